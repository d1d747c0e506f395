#!/usr/bin/env node
// replay-feed.js - a CouchDB-API source that is not the bottleneck: serves a
// recorded _changes feed of one database from memory, so that the sync's
// rate can be measured against PostgreSQL's COPY alone.
//
//   node bench/replay-feed.js --rows FILE --db NAME --port PORT
//
// FILE holds one _changes row per line, as CouchDB sent it (with "seq" and
// "doc"), in feed order; seqs must be increasing integers. Answers:
//   GET /                         {"couchdb":"Welcome"}
//   GET /NAME                     db info (update_seq = the last row's seq)
//   GET /NAME/_changes?since=S&limit=L[&feed=longpoll&timeout=T]
//                                 the rows after S, at most L, with last_seq
//                                 and pending; a longpoll with nothing new
//                                 answers empty after T ms
// Rows are kept as the recorded text and written in chunks, never joined
// into one string. Prints "listening N rows" on stdout once ready.
'use strict';

const fs = require('fs');
const http = require('http');
const readline = require('readline');

const args = {};
for (let i = 2; i + 1 < process.argv.length; i += 2) args[process.argv[i].replace(/^--/, '')] = process.argv[i + 1];
if (!args.rows || !args.db || !args.port) { process.stderr.write('usage: replay-feed.js --rows FILE --db NAME --port PORT\n'); process.exit(2); }

const rows = [], seqs = [];
const seqOf = (line) => { const m = /"seq":(\d+)[,}]/.exec(line.slice(-200)) || /"seq":(\d+)[,}]/.exec(line); return m ? Number(m[1]) : NaN; };

function serve() {
    const last = seqs.length ? seqs[seqs.length - 1] : 0;
    // index of the first row with seq > since
    const after = (since) => { let lo = 0, hi = seqs.length; while (lo < hi) { const m = (lo + hi) >> 1; if (seqs[m] <= since) lo = m + 1; else hi = m; } return lo; };
    http.createServer((req, res) => {
        const u = new URL(req.url, 'http://x');
        const json = (code, obj) => { res.writeHead(code, { 'Content-Type': 'application/json' }); res.end(JSON.stringify(obj)); };
        if (u.pathname === '/') return json(200, { couchdb: 'Welcome', version: 'replay' });
        if (u.pathname === `/${args.db}`) return json(200, { db_name: args.db, update_seq: last, doc_count: rows.length, doc_del_count: 0 });
        if (u.pathname !== `/${args.db}/_changes`) return json(404, { error: 'not_found', reason: 'missing' });
        const since = Number(u.searchParams.get('since') || 0);
        const limit = Number(u.searchParams.get('limit') || rows.length);
        const from = after(Number.isFinite(since) ? since : 0);
        const to = Math.min(rows.length, from + limit);
        const answer = () => {
            res.writeHead(200, { 'Content-Type': 'application/json' });
            res.write('{"results":[\n');
            const step = 500;
            let i = from;
            const more = () => {
                while (i < to) {
                    const end = Math.min(to, i + step);
                    const ok = res.write(rows.slice(i, end).join(',\n') + (end < to ? ',\n' : ''));
                    i = end;
                    if (!ok) { res.once('drain', more); return; }
                }
                res.end(`\n],\n"last_seq":${to > from ? seqs[to - 1] : Math.max(since || 0, 0)},"pending":${rows.length - to}}\n`);
            };
            more();
        };
        if (from >= rows.length && u.searchParams.get('feed') === 'longpoll') {
            const t = setTimeout(answer, Number(u.searchParams.get('timeout') || 60000));
            res.on('close', () => clearTimeout(t));
            return;
        }
        answer();
    }).listen(Number(args.port), '127.0.0.1', () => console.log(`listening ${rows.length} rows`));
}

const rl = readline.createInterface({ input: fs.createReadStream(args.rows), crlfDelay: Infinity });
rl.on('line', (line) => {
    if (!line) return;
    const s = seqOf(line);
    if (!Number.isFinite(s) || (seqs.length && s <= seqs[seqs.length - 1])) { process.stderr.write(`replay-feed: row ${rows.length + 1} has no increasing integer seq\n`); process.exit(1); }
    rows.push(line); seqs.push(s);
});
rl.on('close', serve);
