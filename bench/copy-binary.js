#!/usr/bin/env node
// copy-binary.js - writes the documents of an ndjson file (one document per
// line) as a PostgreSQL binary COPY file for the raw table's columns
// (saved_timestamp, _id, _deleted, source, doc), the format the sync sends,
// so that sync-bench.sh can time `\copy ... (FORMAT binary)` beside text.
//
//   node bench/copy-binary.js --docs FILE --source SOURCE --out FILE
//
// Every row gets one fixed timestamp and _deleted false.
'use strict';

const fs = require('fs');
const readline = require('readline');
const { once } = require('events');

const args = {};
for (let i = 2; i + 1 < process.argv.length; i += 2) args[process.argv[i].replace(/^--/, '')] = process.argv[i + 1];
if (!args.docs || !args.source || !args.out) {
    process.stderr.write('usage: copy-binary.js --docs FILE --source SOURCE --out FILE\n');
    process.exit(2);
}

const out = fs.createWriteStream(args.out);
const source = Buffer.from(args.source);
const ts = Buffer.alloc(8);
ts.writeBigInt64BE(BigInt(Date.UTC(2026, 0, 1) - Date.UTC(2000, 0, 1)) * 1000n); // µs since 2000
const int16 = (v) => { const b = Buffer.alloc(2); b.writeInt16BE(v); return b; };
const int32 = (v) => { const b = Buffer.alloc(4); b.writeInt32BE(v); return b; };
const field = (bytes) => [int32(bytes.length), bytes];

async function main() {
    out.write(Buffer.concat([Buffer.from('PGCOPY\n\xff\r\n\0', 'latin1'), int32(0), int32(0)]));
    const rl = readline.createInterface({ input: fs.createReadStream(args.docs), crlfDelay: Infinity });
    for await (const line of rl) {
        const doc = Buffer.from(line);
        const id = Buffer.from(JSON.parse(line)._id);
        const row = Buffer.concat([int16(5), ...field(ts), ...field(id), ...field(Buffer.from([0])),
            ...field(source), int32(doc.length + 1), Buffer.from([1]), doc]);
        if (!out.write(row)) await once(out, 'drain');
    }
    out.end(int16(-1));
    await once(out, 'finish');
}
main().catch((e) => { process.stderr.write(`copy-binary.js: ${e.message}\n`); process.exit(1); });
