// Loads extension.js with stand-ins for `vscode` and the language client, and checks that
// activation starts the server named by mvitdsl.server.command (default `mvitdsl lsp`) for .mv
// documents, and that a malformed setting falls back to the default with a warning.
"use strict";
const assert = require("assert");
const Module = require("module");

const started = [];
const warnings = [];
let setting;
const vscode = {
  workspace: { getConfiguration: () => ({ get: () => setting }) },
  window: { showWarningMessage: (m) => warnings.push(m), showErrorMessage: (m) => warnings.push(m) },
  commands: { registerCommand: (name) => ({ name, dispose() {} }) },
};
class LanguageClient {
  constructor(id, name, server, client) {
    started.push({ id, server, client });
  }
  start() { return Promise.resolve(); }
  stop() { return Promise.resolve(); }
}
const load = Module._load;
Module._load = function (request, ...rest) {
  if (request === "vscode") return vscode;
  if (request === "vscode-languageclient/node") return { LanguageClient };
  return load.call(this, request, ...rest);
};

const extension = require("../extension.js");
const context = { subscriptions: [] };

(async () => {
  setting = undefined;
  await extension.activate(context);
  assert.deepStrictEqual(started[0].server.run, { command: "mvitdsl", args: ["lsp"] });
  assert.deepStrictEqual(started[0].client.documentSelector[0], { scheme: "file", language: "mvitdsl" });
  assert.strictEqual(context.subscriptions[0].name, "mvitdsl.restartServer");
  setting = ["/opt/venv/bin/mvitdsl", "lsp"];
  assert.deepStrictEqual(extension.serverCommand(), ["/opt/venv/bin/mvitdsl", "lsp"]);
  for (const bad of ["mvitdsl lsp", [], [""], [3], null]) {
    setting = bad;
    assert.deepStrictEqual(extension.serverCommand(), ["mvitdsl", "lsp"]);
  }
  assert.strictEqual(warnings.length, 5);
  console.log("smoke: ok");
})().catch((e) => {
  console.error(e);
  process.exit(1);
});
