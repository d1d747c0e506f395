#!/usr/bin/env node
// seq-proxy.js - makes pouchdb-server's integer sequences look like CouchDB 3's
// opaque ones ("23-g1AAAA…"), so that tests cover clients that must store and
// echo sequences verbatim.
//
//   node tests/couch/seq-proxy.js --target http://127.0.0.1:PORT --port LISTEN
//        [--salt S] [--scramble] [--null-seqs]
//
// Forwards every request as is, except that a `since` query parameter is
// mapped back to the integer (0 and now pass; anything else that this proxy
// did not issue gets CouchDB's 400 bad_request). In the responses of
// /{db}/_changes and GET /{db}, the integer `seq` / `last_seq` / `update_seq`
// members of the change rows / top-level objects (never those inside docs)
// become opaque strings, rewritten while the body streams through. Tokens are
// an HMAC of the integer under --salt (random by default: give the same salt
// to a restarted proxy so that stored checkpoints stay valid). --scramble
// makes the number before the dash non-monotonic, as on a CouchDB cluster.
// --null-seqs does what CouchDB 3 does for a request with seq_interval=N:
// the rows' seq is null except on every N-th row of the answer (last_seq is
// always sent).
// Prints "listening" on stdout once ready.
'use strict';

const http = require('http');
const crypto = require('crypto');
const { StringDecoder } = require('string_decoder');

const args = { salt: crypto.randomBytes(16).toString('hex'), scramble: false, nullSeqs: false };
for (let i = 2; i < process.argv.length; i++) {
    const a = process.argv[i];
    if (a === '--scramble') args.scramble = true;
    else if (a === '--null-seqs') args.nullSeqs = true;
    else if (['--target', '--port', '--salt'].includes(a) && i + 1 < process.argv.length) args[a.slice(2)] = process.argv[++i];
    else { process.stderr.write(`seq-proxy: unknown argument ${a}\n`); process.exit(2); }
}
if (!args.target || !args.port) { process.stderr.write('usage: seq-proxy.js --target URL --port PORT [--salt S] [--scramble]\n'); process.exit(2); }
const target = new URL(args.target);

const hmac = (data) => crypto.createHmac('sha256', args.salt).update(data).digest();
const mask8 = (head) => hmac(Buffer.concat([Buffer.from('mask'), head])).subarray(0, 8);

// N -> "N-g1AAAA" + 66 chars of base64url (48 bytes: 12 of MAC, 8 of masked N,
// 28 of padding, with a "-" and a "_" put in at fixed places).
function encodeSeq(n) {
    const nb = Buffer.alloc(8);
    nb.writeBigUInt64BE(BigInt(n));
    const head = hmac(nb).subarray(0, 12);
    const masked = Buffer.from(mask8(head).map((b, k) => b ^ nb[k]));
    const pad = hmac(Buffer.concat([Buffer.from('pad'), nb])).subarray(0, 28);
    const b64 = Buffer.concat([head, masked, pad]).toString('base64url');
    const lead = args.scramble ? BigInt(n) * 7n % 1000n + BigInt(head[0]) : BigInt(n);
    return `${lead}-g1AAAA${b64.slice(0, 21)}-${b64.slice(21, 42)}_${b64.slice(42)}`;
}

// token -> integer string, or null when this proxy did not issue it
function decodeSeq(token) {
    const m = /^\d+-g1AAAA([A-Za-z0-9_-]{21})-([A-Za-z0-9_-]{21})_([A-Za-z0-9_-]{22})$/.exec(token);
    if (!m) return null;
    const body = Buffer.from(m[1] + m[2] + m[3], 'base64url');
    if (body.length !== 48) return null;
    const head = body.subarray(0, 12);
    const nb = Buffer.from(mask8(head).map((b, k) => b ^ body[12 + k]));
    const n = nb.readBigUInt64BE();
    if (n > BigInt(Number.MAX_SAFE_INTEGER)) return null;
    return encodeSeq(n) === token ? n.toString() : null;
}

// Streaming rewriter: a small JSON scanner that tracks nesting, so it only
// touches numbers that are the value of an interesting key either at the top
// level of a value (db info, continuous rows, last_seq) or in a row of the
// top-level "results" array. A number split across chunks is carried over.
class Rewriter {
    constructor(seqInterval) {
        this.seqInterval = seqInterval; this.rows = 0;
        this.stack = []; this.inStr = false; this.esc = false; this.keyBuf = null;
        this.expectKey = false; this.pendingKey = null; this.curKey = null; this.num = null; this.atValue = false;
    }
    interesting() {
        const k = this.curKey, s = this.stack;
        if (k !== 'seq' && k !== 'last_seq' && k !== 'update_seq') return false;
        return (s.length === 1 && s[0].t === 123) ||
            (s.length === 3 && s[0].t === 123 && s[1].t === 91 && s[1].key === 'results' && s[2].t === 123);
    }
    emitNum(digits, next) {
        if (next === 46 || next === 101 || next === 69) return digits;  // 1.5 / 1e3: leave
        if (this.seqInterval > 0 && this.stack.length === 3 && ++this.rows % this.seqInterval !== 0) return 'null';
        return `"${encodeSeq(digits)}"`;
    }
    push(s) {
        let out = '', from = 0, numStart = 0, keyStart = 0;
        for (let i = 0; i < s.length; i++) {
            const c = s.charCodeAt(i);
            if (this.num !== null) {
                if (c >= 48 && c <= 57) continue;
                out += this.emitNum(this.num + s.slice(numStart, i), c);
                this.num = null; from = i;
            }
            if (this.inStr) {
                if (this.esc) this.esc = false;
                else if (c === 92) this.esc = true;
                else if (c === 34) {
                    this.inStr = false;
                    if (this.keyBuf !== null) { this.pendingKey = this.keyBuf + s.slice(keyStart, i); this.keyBuf = null; }
                }
                continue;
            }
            if (c === 32 || c === 10 || c === 13 || c === 9) continue;
            const atValue = this.atValue;
            this.atValue = c === 58;
            switch (c) {
                case 34: this.inStr = true; if (this.expectKey) { this.keyBuf = ''; keyStart = i + 1; } break;
                case 123: this.stack.push({ t: c, key: this.curKey }); this.expectKey = true; this.curKey = null; break;
                case 91: this.stack.push({ t: c, key: this.curKey }); this.expectKey = false; this.curKey = null; break;
                case 125: case 93: this.stack.pop(); this.expectKey = false; this.curKey = null; break;
                case 58: this.curKey = this.pendingKey; this.pendingKey = null; this.expectKey = false; break;
                case 44: this.curKey = null; this.expectKey = this.stack.length > 0 && this.stack[this.stack.length - 1].t === 123; break;
                default:
                    if (atValue && c >= 48 && c <= 57 && this.interesting()) {
                        out += s.slice(from, i); from = i; numStart = i; this.num = '';
                    }
            }
        }
        if (this.num !== null) { out += s.slice(from, numStart); this.num += s.slice(numStart); return out; }
        if (this.inStr && this.keyBuf !== null) this.keyBuf += s.slice(keyStart);
        return out + s.slice(from);
    }
    end() {
        const n = this.num; this.num = null;
        return n !== null && n !== '' ? this.emitNum(n, 0) : '';
    }
}

function badRequest(res) {
    res.writeHead(400, { 'Content-Type': 'application/json' });
    res.end(JSON.stringify({ error: 'bad_request', reason: "Malformed sequence supplied in 'since' parameter." }) + '\n');
}

const server = http.createServer((req, res) => {
    const q = req.url.indexOf('?');
    const path = q < 0 ? req.url : req.url.slice(0, q);
    let query = q < 0 ? '' : req.url.slice(q + 1);
    const segs = path.split('/').filter(Boolean);
    const rewrite = (segs.length === 2 && segs[1] === '_changes') || (segs.length === 1 && req.method === 'GET');

    if (query) {
        let bad = false;
        query = query.split('&').map((part) => {
            if (!part.startsWith('since=')) return part;
            const since = decodeURIComponent(part.slice(6).replace(/\+/g, ' '));
            if (since === '0' || since === 'now') return part;
            const n = decodeSeq(since);
            if (n === null) bad = true;
            return `since=${n}`;
        }).join('&');
        if (bad) { req.resume(); return badRequest(res); }
    }

    const headers = { ...req.headers, host: target.host };
    delete headers.connection; delete headers['keep-alive']; delete headers['proxy-connection'];
    if (rewrite) delete headers['accept-encoding'];
    const up = http.request({
        hostname: target.hostname, port: target.port || 80, method: req.method,
        path: path + (query ? `?${query}` : ''), headers, agent: false,
    }, (ur) => {
        const h = { ...ur.headers };
        delete h.connection; delete h['keep-alive']; delete h['transfer-encoding'];
        if (rewrite && ur.statusCode < 300) delete h['content-length'];
        res.writeHead(ur.statusCode, h);
        if (!(rewrite && ur.statusCode < 300)) { ur.pipe(res); return; }
        const si = /(?:^|&)seq_interval=(\d+)/.exec(query);
        const dec = new StringDecoder('utf8'), rw = new Rewriter(args.nullSeqs && si ? Number(si[1]) : 0);
        ur.on('data', (b) => { const t = rw.push(dec.write(b)); if (t) res.write(t); });
        ur.on('end', () => res.end(rw.push(dec.end()) + rw.end()));
        ur.on('error', () => res.destroy());
    });
    up.on('error', (e) => {
        if (!res.headersSent) {
            res.writeHead(502, { 'Content-Type': 'application/json' });
            res.end(JSON.stringify({ error: 'proxy_error', reason: e.message }) + '\n');
        } else res.destroy();
    });
    res.on('close', () => { if (!res.writableFinished) up.destroy(); });
    req.pipe(up);
});

server.listen(Number(args.port), '127.0.0.1', () => process.stdout.write('listening\n'));
process.on('SIGTERM', () => process.exit(0));
