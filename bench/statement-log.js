#!/usr/bin/env node
// statement-log.js - turns a PostgreSQL server log written with
// log_statement=all into a psql script that sends the same statements in
// the same order, so that what a client ran can be run again by psql.
//
//   node bench/statement-log.js --log FILE [--from BYTES] [--prefix MARK] > out.sql
//
// The server must log with log_line_prefix = 'MARK %p %l ' (MARK defaults
// to @@cs@@): an entry starts with the mark, the backend's pid and the
// line number; its further lines start with a tab, which is removed.  Read:
//   LOG:  statement: SQL               the simple protocol (PQexec): SQL as sent
//   LOG:  execute <unnamed>: SQL       the extended protocol (PQexecParams),
//   DETAIL:  parameters: $1 = '...'    with its parameters as literals, which
//                                      are put in place of $1, $2, ...
// Entries before byte --from of FILE are skipped (the log's size before the
// client started).  Exits 1, saying why, when the statements come from more
// than one backend (the order between connections is not in the log) or when
// an entry is an ERROR (what failed is not worth replaying).  Each statement
// is written followed by ";" on its own line; a trailing ";" of the
// statement makes an empty statement, which psql ignores.
'use strict';

const fs = require('fs');

function die(msg) {
    process.stderr.write(`statement-log: ${msg}\n`);
    process.exit(1);
}

const o = { from: 0, prefix: '@@cs@@' };
const argv = process.argv.slice(2);
for (let i = 0; i < argv.length; i++) {
    const v = () => (i + 1 < argv.length ? argv[++i] : die(`missing value for ${argv[i]}`));
    switch (argv[i]) {
        case '--log': o.log = v(); break;
        case '--from': o.from = Number(v()); break;
        case '--prefix': o.prefix = v(); break;
        default: die(`unknown argument ${argv[i]}`);
    }
}
if (!o.log) die('--log FILE is required');

const text = fs.readFileSync(o.log).subarray(o.from).toString('utf8');
const head = new RegExp(`^${o.prefix.replace(/[^\w]/g, '\\$&')} (\\d+) \\d+ (\\w+):  (.*)$`);

// the log's entries: {pid, level, text} with continuation lines joined
const entries = [];
for (const line of text.split('\n')) {
    const m = head.exec(line);
    if (m) entries.push({ pid: m[1], level: m[2], text: m[3] });
    else if (line.startsWith('\t') && entries.length) entries[entries.length - 1].text += '\n' + line.slice(1);
}

// the values of "$1 = 'a''b', $2 = NULL": literals as PostgreSQL quoted them
function parameters(s) {
    const vals = {};
    const re = /\$(\d+) = (NULL|'(?:[^']|'')*')(?:, |$)/gy;
    let m;
    while ((m = re.exec(s)) !== null) vals[m[1]] = m[2];
    if (re.lastIndex !== 0 && re.lastIndex !== s.length) die(`could not read the parameters: ${s.slice(0, 200)}`);
    return vals;
}

// $n outside quotes and dollar quotes gets its literal (the statements with
// parameters are the runner's own catalog queries: no dollar quoting there)
function bind(sql, vals) {
    return sql.replace(/\$(\d+)(?!\d)/g, (all, n) => {
        if (!(n in vals)) die(`parameter $${n} has no value in: ${sql.slice(0, 200)}`);
        return vals[n];
    });
}

const out = [];
const pids = new Set();
for (let k = 0; k < entries.length; k++) {
    const e = entries[k];
    if (e.level === 'ERROR' || e.level === 'FATAL') die(`the log has an error: ${e.text.slice(0, 300)}`);
    if (e.level !== 'LOG') continue;
    let sql;
    if (e.text.startsWith('statement: ')) {
        sql = e.text.slice('statement: '.length);
    } else {
        const m = /^execute [^:]*: ([\s\S]*)$/.exec(e.text);
        if (!m) continue;   // another LOG line (a checkpoint, a parameter change)
        const next = entries[k + 1];
        const detail = next && next.pid === e.pid && next.level === 'DETAIL' && next.text.startsWith('parameters: ');
        sql = detail ? bind(m[1], parameters(next.text.slice('parameters: '.length))) : m[1];
    }
    pids.add(e.pid);
    out.push(sql.replace(/\s+$/, '') + '\n;\n');
}
if (pids.size > 1) die(`statements of ${pids.size} connections (pids ${[...pids].join(', ')}): run the client with one`);
if (!out.length) die('no statement in the log');
process.stdout.write(out.join(''));
