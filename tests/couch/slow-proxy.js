#!/usr/bin/env node
// slow-proxy.js - forwards every request to the target as is, except that the
// body of a longpoll `_changes` answer (feed=longpoll in the query) is passed
// on slowly or cut, to test how the client bounds its waits:
//
//   node tests/couch/slow-proxy.js --target http://127.0.0.1:PORT --port LISTEN
//        [--bytes N --every MS]   re-send the body N bytes every MS ms
//        [--cut-after N]          send N bytes of the body, then reset the
//                                 connection (bodies shorter than N pass whole)
//
// Headers go out at once, as CouchDB sends them. Prints "listening" on stdout
// once ready.
'use strict';

const http = require('http');

const args = { bytes: 0, every: 0, 'cut-after': 0 };
for (let i = 2; i < process.argv.length; i++) {
    const a = process.argv[i].replace(/^--/, '');
    if (!(a in args) && a !== 'target' && a !== 'port') { process.stderr.write(`slow-proxy: unknown argument ${a}\n`); process.exit(2); }
    args[a] = process.argv[++i];
}
if (!args.target || !args.port) { process.stderr.write('usage: slow-proxy.js --target URL --port PORT [--bytes N --every MS] [--cut-after N]\n'); process.exit(2); }
const target = new URL(args.target);
const bytes = Number(args.bytes), every = Number(args.every), cutAfter = Number(args['cut-after']);

http.createServer((req, res) => {
    const longpoll = /\/_changes\?/.test(req.url) && /[?&]feed=longpoll(&|$)/.test(req.url);
    const up = http.request({ host: target.hostname, port: target.port, method: req.method, path: req.url, headers: req.headers }, (ur) => {
        res.writeHead(ur.statusCode, ur.headers);
        res.flushHeaders();
        if (!longpoll || ur.statusCode !== 200 || (!cutAfter && !(bytes && every))) { ur.pipe(res); return; }
        // queue the body and let it out at our pace
        let queue = Buffer.alloc(0), ended = false, sent = 0, timer = null;
        const pump = () => {
            timer = null;
            if (cutAfter && sent + queue.length > cutAfter) {
                if (cutAfter > sent) res.write(queue.subarray(0, cutAfter - sent));
                sent = cutAfter;
                res.socket.destroy();
                ur.destroy();
                return;
            }
            const n = bytes && every ? Math.min(bytes, queue.length) : queue.length;
            if (n > 0) { res.write(queue.subarray(0, n)); queue = queue.subarray(n); sent += n; }
            if (queue.length > 0) timer = setTimeout(pump, every);
            else if (ended) res.end();
        };
        ur.on('data', (d) => { queue = Buffer.concat([queue, d]); if (!timer) timer = setTimeout(pump, bytes && every ? every : 0); });
        ur.on('end', () => { ended = true; if (!timer) timer = setTimeout(pump, 0); });
        res.on('close', () => { if (timer) clearTimeout(timer); ur.destroy(); });
    });
    up.on('error', () => { res.destroy(); });
    // the client went away (it ended a longpoll on its side): so do we
    res.on('close', () => { if (!res.writableFinished) up.destroy(); });
    req.pipe(up);
}).listen(Number(args.port), '127.0.0.1', () => console.log('listening'));
