// The mvitdsl extension: starts the language server (`mvitdsl lsp` by default; the setting
// mvitdsl.server.command) over stdio for .mv files. Highlighting is the TextMate grammar in
// syntaxes/ (copied from mvitdsl/lsp/mvitdsl.tmLanguage.json by build-grammar.js).
"use strict";

const vscode = require("vscode");
const { LanguageClient } = require("vscode-languageclient/node");

let client;

/** The server command from the settings: a non-empty list of strings, else the default. */
function serverCommand() {
  const setting = vscode.workspace.getConfiguration("mvitdsl").get("server.command");
  if (setting === undefined) {
    return ["mvitdsl", "lsp"];
  }
  const ok = Array.isArray(setting) && setting.length > 0 && setting.every((s) => typeof s === "string" && s.length > 0);
  if (!ok) {
    vscode.window.showWarningMessage("mvitdsl.server.command must be a list like [\"mvitdsl\", \"lsp\"]; using the default");
    return ["mvitdsl", "lsp"];
  }
  return setting;
}

function start() {
  const [command, ...args] = serverCommand();
  const server = { command, args };
  client = new LanguageClient(
    "mvitdsl",
    "mvitdsl language server",
    { run: server, debug: server },
    { documentSelector: [{ scheme: "file", language: "mvitdsl" }, { scheme: "untitled", language: "mvitdsl" }] },
  );
  return client.start().catch((err) => {
    vscode.window.showErrorMessage(
      `mvitdsl: could not start \`${[command, ...args].join(" ")}\` (${err.message}); ` +
        "install mvitdsl with its lsp extra (pip install 'mvitdsl[lsp]') or set mvitdsl.server.command",
    );
  });
}

async function restart() {
  if (client) {
    await client.stop().catch(() => undefined);
  }
  await start();
}

function activate(context) {
  context.subscriptions.push(vscode.commands.registerCommand("mvitdsl.restartServer", restart));
  return start();
}

function deactivate() {
  return client ? client.stop() : undefined;
}

module.exports = { activate, deactivate, serverCommand };
