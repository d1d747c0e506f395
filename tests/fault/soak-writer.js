#!/usr/bin/env node
// soak-writer.js - steady writes into CouchDB databases for tests/fault/soak.sh:
// every tick, per database, one _bulk_docs of new documents, edits of
// documents written before and deletions.  It keeps going through server
// restarts (a failed request is counted and the next tick tries again).
//
//   node tests/fault/soak-writer.js --url URL --dbs a,b [--tick-ms 100]
//        [--new 5] [--edit 2] [--delete 1] --stats FILE
//
// On SIGTERM it finishes the request in flight, writes its figures as JSON to
// FILE ({"written":…,"created":…,"edited":…,"deleted":…,"failed_requests":…})
// and exits 0.
'use strict';

const http = require('http');

function parseArgs(argv) {
    const o = { tickMs: 100, new: 5, edit: 2, delete: 1 };
    for (let i = 0; i < argv.length; i += 2) {
        const v = argv[i + 1];
        switch (argv[i]) {
            case '--url': o.url = v; break;
            case '--dbs': o.dbs = v.split(','); break;
            case '--tick-ms': o.tickMs = Number(v); break;
            case '--new': o.new = Number(v); break;
            case '--edit': o.edit = Number(v); break;
            case '--delete': o.delete = Number(v); break;
            case '--stats': o.stats = v; break;
            default: process.stderr.write(`soak-writer: unknown argument ${argv[i]}\n`); process.exit(2);
        }
    }
    if (!o.url || !o.dbs || !o.stats) { process.stderr.write('soak-writer: --url, --dbs and --stats are required\n'); process.exit(2); }
    return o;
}

const opt = parseArgs(process.argv.slice(2));
const stats = { written: 0, created: 0, edited: 0, deleted: 0, failed_requests: 0 };
let stopping = false;

function post(path, body) {
    return new Promise((resolve) => {
        const data = JSON.stringify(body);
        const req = http.request(opt.url + path, {
            method: 'POST', headers: { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(data) },
            timeout: 10000,
        }, (res) => {
            let text = '';
            res.setEncoding('utf8');
            res.on('data', (c) => { text += c; });
            res.on('end', () => {
                try { resolve(res.statusCode < 300 ? JSON.parse(text) : null); } catch (e) { resolve(null); }
            });
            res.on('error', () => resolve(null));
        });
        req.on('timeout', () => req.destroy());
        req.on('error', () => resolve(null));
        req.end(data);
    });
}

// per database: live documents we wrote, id -> rev
const live = new Map(opt.dbs.map((db) => [db, new Map()]));
let counter = 0;

function pick(map) {
    const keys = [...map.keys()];
    return keys.length ? keys[Math.floor(Math.random() * keys.length)] : null;
}

async function tick(db) {
    const docs = live.get(db);
    const batch = [];
    const kind = {};
    for (let i = 0; i < opt.new; i++) {
        const id = `soak-${process.pid}-${counter++}`;
        batch.push({ _id: id, type: 'data_record', form: 'soak', n: counter, reported_date: Date.now() });
        kind[id] = 'created';
    }
    for (let i = 0; i < opt.edit; i++) {
        const id = pick(docs);
        if (id && !kind[id]) { batch.push({ _id: id, _rev: docs.get(id), type: 'data_record', form: 'soak', edited: Date.now() }); kind[id] = 'edited'; }
    }
    for (let i = 0; i < opt.delete; i++) {
        const id = pick(docs);
        if (id && !kind[id]) { batch.push({ _id: id, _rev: docs.get(id), _deleted: true }); kind[id] = 'deleted'; }
    }
    const res = await post(`/${encodeURIComponent(db)}/_bulk_docs`, { docs: batch });
    if (!Array.isArray(res)) { stats.failed_requests++; return; }
    for (const r of res) {
        if (!r.ok) { docs.delete(r.id); continue; } // a conflict: forget it, CouchDB knows best
        stats.written++;
        stats[kind[r.id]]++;
        if (kind[r.id] === 'deleted') docs.delete(r.id); else docs.set(r.id, r.rev);
    }
}

async function main() {
    process.on('SIGTERM', () => { stopping = true; });
    while (!stopping) {
        const t0 = Date.now();
        await Promise.all(opt.dbs.map(tick));
        const wait = opt.tickMs - (Date.now() - t0);
        if (wait > 0 && !stopping) await new Promise((r) => setTimeout(r, wait));
    }
    require('fs').writeFileSync(opt.stats, JSON.stringify(stats) + '\n');
}

main();
