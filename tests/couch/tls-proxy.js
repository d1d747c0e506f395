#!/usr/bin/env node
// tls-proxy.js - an https front for the test CouchDB, as nginx is for a CHT
// deployment, so tests cover certificate verification.
//
//   node tests/couch/tls-proxy.js --target http://127.0.0.1:PORT --port LISTEN --key K --cert C
//
// Forwards every request and streams every response unchanged. Prints
// "listening" once ready.
'use strict';

const http = require('http');
const https = require('https');
const fs = require('fs');

const args = {};
for (let i = 2; i + 1 < process.argv.length; i += 2) args[process.argv[i].slice(2)] = process.argv[i + 1];
const target = new URL(args.target);

const server = https.createServer({ key: fs.readFileSync(args.key), cert: fs.readFileSync(args.cert) }, (req, res) => {
    const up = http.request({
        host: target.hostname, port: target.port, method: req.method, path: req.url, headers: req.headers,
    }, (upres) => {
        res.writeHead(upres.statusCode, upres.headers);
        upres.pipe(res);
    });
    up.on('error', () => { res.writeHead(502); res.end('{"error":"bad_gateway"}'); });
    req.pipe(up);
});
server.listen(Number(args.port), '127.0.0.1', () => process.stdout.write('listening\n'));
