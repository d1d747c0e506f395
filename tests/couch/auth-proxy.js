#!/usr/bin/env node
// auth-proxy.js - CouchDB 3's authentication in front of the test server,
// which enforces none on databases: every request needs a valid session
// cookie or basic credentials, and sessions can be expired on demand.
//
//   node tests/couch/auth-proxy.js --target URL --port LISTEN --user U --password P [--no-session]
//
// POST /_session     {name, password} -> AuthSession cookie (404 with --no-session)
// POST /_test/expire  forgets every session, as CouchDB does when a cookie times out
// GET  /_test/stats   {"logins", "cookie", "basic", "refused"} counts
// Anything else is forwarded when authorised, else 401 as CouchDB answers.
'use strict';

const http = require('http');
const crypto = require('crypto');

const args = { session: true };
for (let i = 2; i < process.argv.length; i++) {
    const a = process.argv[i];
    if (a === '--no-session') args.session = false;
    else args[a.slice(2)] = process.argv[++i];
}
const target = new URL(args.target);
const sessions = new Set();
const stats = { logins: 0, cookie: 0, basic: 0, refused: 0 };

function json(res, status, body, headers = {}) {
    res.writeHead(status, { 'Content-Type': 'application/json', ...headers });
    res.end(JSON.stringify(body));
}

function authorised(req) {
    const m = /AuthSession=([0-9a-f]+)/.exec(req.headers.cookie || '');
    if (m && sessions.has(m[1])) { stats.cookie++; return true; }
    const b = /^Basic (.+)$/.exec(req.headers.authorization || '');
    if (b && Buffer.from(b[1], 'base64').toString() === `${args.user}:${args.password}`) { stats.basic++; return true; }
    return false;
}

http.createServer((req, res) => {
    const path = req.url.split('?')[0];
    if (path === '/_test/expire') { sessions.clear(); return json(res, 200, { ok: true }); }
    if (path === '/_test/stats') return json(res, 200, stats);
    if (path === '/_session' && req.method === 'POST') {
        if (!args.session) return json(res, 404, { error: 'not_found', reason: 'missing' });
        let body = '';
        req.on('data', (d) => { body += d; });
        req.on('end', () => {
            let c = {};
            try { c = JSON.parse(body); } catch (e) { /* answered below */ }
            if (c.name !== args.user || c.password !== args.password) {
                return json(res, 401, { error: 'unauthorized', reason: 'Name or password is incorrect.' });
            }
            const token = crypto.randomBytes(16).toString('hex');
            sessions.add(token);
            stats.logins++;
            json(res, 200, { ok: true, name: c.name, roles: ['_admin'] },
                { 'Set-Cookie': `AuthSession=${token}; Version=1; Path=/; HttpOnly` });
        });
        return;
    }
    if (!authorised(req)) {
        stats.refused++;
        req.resume();
        return json(res, 401, { error: 'unauthorized', reason: 'You are not authorized to access this db.' });
    }
    const headers = { ...req.headers };
    delete headers.authorization;
    delete headers.cookie;
    const up = http.request({ host: target.hostname, port: target.port, method: req.method, path: req.url, headers },
        (upres) => { res.writeHead(upres.statusCode, upres.headers); upres.pipe(res); });
    up.on('error', () => json(res, 502, { error: 'bad_gateway' }));
    res.on('close', () => up.destroy());
    req.pipe(up);
}).listen(Number(args.port), '127.0.0.1', () => process.stdout.write('listening\n'));
