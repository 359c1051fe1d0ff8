// Copies the one TextMate grammar (mvitdsl/lsp/mvitdsl.tmLanguage.json, which the Python tests
// check against every shipped spec) into syntaxes/, where package.json points VS Code at it.
"use strict";
const fs = require("fs");
const path = require("path");

const source = path.join(__dirname, "..", "..", "mvitdsl", "lsp", "mvitdsl.tmLanguage.json");
const target = path.join(__dirname, "syntaxes", "mvitdsl.tmLanguage.json");
fs.mkdirSync(path.dirname(target), { recursive: true });
fs.copyFileSync(source, target);
