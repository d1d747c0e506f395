#!/usr/bin/env node
// gen-cht.js - deterministic CHT-shaped sample documents, written to a
// CouchDB-API server through _bulk_docs (or printed with --dump).
//
//   node tests/data/gen-cht.js --url URL --db NAME --count N [--seed S]
//        [--kind medic|sentinel|users-meta|users] [--batch 1000] [--prefix P]
//        [--start K] [--dump]
//
// The documents of indices K..K+N-1 are a pure function of (seed, prefix,
// kind, index): the same arguments always give the same documents, and a
// document's _id depends only on (seed, prefix, index), so the sentinel `info`
// doc of index i describes the medic doc of index i. The `settings` doc is
// emitted for index 0 only. Prints one JSON line:
//   {"db":…,"docs":N,"by_type":{"person":…},"errors":0,…}
// and exits 1 when a document could not be written.
'use strict';

const crypto = require('crypto');

function parseArgs(argv) {
    const o = { kind: 'medic', seed: '1', batch: 1000, prefix: '', start: 0, dump: false, count: NaN };
    for (let i = 0; i < argv.length; i++) {
        const a = argv[i];
        const val = () => {
            if (i + 1 >= argv.length) die(`missing value for ${a}`);
            return argv[++i];
        };
        switch (a) {
            case '--url': o.url = val(); break;
            case '--db': o.db = val(); break;
            case '--count': o.count = Number(val()); break;
            case '--seed': o.seed = val(); break;
            case '--kind': o.kind = val(); break;
            case '--batch': o.batch = Number(val()); break;
            case '--prefix': o.prefix = val(); break;
            case '--start': o.start = Number(val()); break;
            case '--dump': o.dump = true; break;
            case '-h': case '--help':
                process.stdout.write('usage: gen-cht.js --url URL --db NAME --count N [--seed S] ' +
                    '[--kind medic|sentinel|users-meta|users] [--batch 1000] [--prefix P] [--start K] [--dump]\n');
                process.exit(0);
            default: die(`unknown argument ${a}`);
        }
    }
    if (!Number.isInteger(o.count) || o.count < 0) die('--count N is required');
    if (!Number.isInteger(o.start) || o.start < 0) die('bad --start');
    if (!Number.isInteger(o.batch) || o.batch < 1) die('bad --batch');
    if (!['medic', 'sentinel', 'users-meta', 'users'].includes(o.kind)) die(`unknown kind ${o.kind}`);
    if (!o.dump && (!o.url || !o.db)) die('--url and --db are required (or --dump)');
    return o;
}

function die(msg) {
    process.stderr.write(`gen-cht: ${msg}\n`);
    process.exit(2);
}

// ---- seeded PRNG (sfc32 seeded from a string hash) -------------------------

function hash32(str) {
    let h = 2166136261 >>> 0;                  // FNV-1a
    for (let i = 0; i < str.length; i++) {
        h ^= str.charCodeAt(i);
        h = Math.imul(h, 16777619) >>> 0;
    }
    return h;
}

function makeRng(key) {
    let a = hash32('a' + key), b = hash32('b' + key), c = hash32('c' + key), d = hash32('d' + key);
    const next = () => {
        a >>>= 0; b >>>= 0; c >>>= 0; d >>>= 0;
        let t = (a + b) | 0;
        a = b ^ (b >>> 9);
        b = (c + (c << 3)) | 0;
        c = (c << 21) | (c >>> 11);
        d = (d + 1) | 0;
        t = (t + d) | 0;
        c = (c + t) | 0;
        return (t >>> 0) / 4294967296;
    };
    for (let i = 0; i < 12; i++) next();
    const r = {
        next,
        int: (lo, hi) => lo + Math.floor(next() * (hi - lo + 1)),   // inclusive
        pick: (arr) => arr[Math.floor(next() * arr.length)],
        chance: (p) => next() < p,
        hex: (n) => { let s = ''; while (s.length < n) s += ((next() * 4294967296) >>> 0).toString(16).padStart(8, '0'); return s.slice(0, n); },
        digits: (n) => { let s = ''; for (let i = 0; i < n; i++) s += Math.floor(next() * 10); return s; },
    };
    return r;
}

// A document id depends only on (seed, prefix, index).
function docId(seed, prefix, index) {
    const h = makeRng(`id:${seed}:${prefix}:${index}`).hex(32);
    return `${prefix}${h.slice(0, 8)}-${h.slice(8, 12)}-4${h.slice(13, 16)}-a${h.slice(17, 20)}-${h.slice(20, 32)}`;
}

// ---- vocabulary -------------------------------------------------------------

const FIRST = ['Amina', 'Joseph', 'Grace', 'Peter', 'Fatuma', 'John', 'Mary', 'Samuel', 'Esther', 'David',
    'Wanjiru', 'Kofi', 'Aïcha', 'Nnamdi', 'Zoë', 'Thandiwe', 'Chidi', 'Lwazi', 'Nasra', 'Otieno'];
const LAST = ['Mwangi', 'Okello', 'Banda', 'Phiri', 'Achieng', 'Nkosi', 'Diallo', 'Mensah', 'Kamau', 'Osei',
    'Traoré', 'Mutua', 'Njeri', 'Abubakar', 'Tembo'];
const PLACES = ['Kisumu', 'Nakuru', 'Eldoret', 'Machakos', 'Thika', 'Kitale', 'Malindi', 'Garissa', 'Kakamega', 'Nyeri'];
const FORMS = ['pregnancy', 'pregnancy_home_visit', 'delivery', 'assessment', 'immunization_visit', 'death_report'];
const ROLES = ['chw', 'chw_supervisor', 'nurse', 'program_officer'];
const LANGS = ['en', 'fr', 'sw', 'es'];
const APPS = ['3.7.1', '3.17.0', '4.2.4', '4.5.0', '4.10.0'];
const TRANSITIONS = ['update_clinics', 'registration', 'accept_patient_reports', 'default_responses', 'muting'];
const NOTES = ['', '', '', 'Prefers visits after 2pm', 'Line one\nline two', 'Path C:\\records\\old', 'Said "call me" – ok',
    'Emoji 🙂 and tab\there'];

const T0 = Date.UTC(2023, 0, 1);
const T_SPAN = 2 * 365 * 86400 * 1000;

function personName(r) { return `${r.pick(FIRST)} ${r.pick(LAST)}`; }
function phone(r) { return `+2547${r.digits(8)}`; }
function lineage(node) {                       // {_id, parent: {...}} without names
    return node ? (node.parent ? { _id: node._id, parent: lineage(node.parent) } : { _id: node._id }) : undefined;
}

// ---- generators ---------------------------------------------------------------

// medic: parents are generated before their children; indices pick a type
// by weight, falling back to the parent type when no parent exists yet.
class Medic {
    constructor(opts) {
        this.o = opts;
        this.dh = []; this.hc = []; this.clinics = []; this.persons = [];
        this.users = 0;
    }

    doc(i) {
        const o = this.o;
        const r = makeRng(`doc:${o.seed}:${o.prefix}:${i}`);
        const id = docId(o.seed, o.prefix, i);
        if (i === 0) {
            return {
                _id: 'settings',
                settings: {
                    contact_types: [
                        { id: 'district_hospital', name_key: 'contact.type.district_hospital', group_key: 'contact.type.district_hospital.plural', create_key: 'contact.type.district_hospital.new', edit_key: 'contact.type.place.edit', icon: 'medic-district-hospital', create_form: 'form:contact:district_hospital:create', edit_form: 'form:contact:district_hospital:edit' },
                        { id: 'health_center', parents: ['district_hospital'], name_key: 'contact.type.health_center', icon: 'medic-health-center' },
                        { id: 'clinic', parents: ['health_center'], name_key: 'contact.type.clinic', icon: 'medic-clinic', count_visits: true },
                        { id: 'person', parents: ['district_hospital', 'health_center', 'clinic'], name_key: 'contact.type.person', icon: 'medic-person', person: true },
                    ],
                    locale: 'en', locale_outgoing: 'en', default_country_code: 254,
                    task_day_count_start: 0, outgoing_deny_list: '',
                },
            };
        }
        if (i === 1) return this.place(r, id, 'district_hospital');
        const x = r.next();
        let type;
        if (x < 0.01) type = 'district_hospital';
        else if (x < 0.05) type = 'health_center';
        else if (x < 0.20) type = 'clinic';
        else if (x < 0.55) type = 'person';
        else if (x < 0.552) type = 'user-settings';
        else if (x < 0.554) type = 'feedback';
        else if (x < 0.557) type = 'telemetry';
        else type = 'data_record';
        if (type === 'data_record' && !this.persons.length) type = 'person';
        if (type === 'person' && !this.clinics.length && !this.hc.length) type = 'clinic';
        if (type === 'clinic' && !this.hc.length) type = 'health_center';
        switch (type) {
            case 'district_hospital': case 'health_center': case 'clinic': return this.place(r, id, type);
            case 'person': return this.person(r, id);
            case 'user-settings': return this.userSettings(r);
            case 'feedback': return feedback(r, id, this.o.prefix);
            case 'telemetry': return telemetry(r, id, this.o.prefix);
            default: return this.report(r, id);
        }
    }

    place(r, id, type) {
        const parentPool = type === 'health_center' ? this.dh : type === 'clinic' ? this.hc : null;
        const parent = parentPool ? r.pick(parentPool) : null;
        const node = { _id: id, parent };
        const contact = this.persons.length ? r.pick(this.persons) : null;
        const d = {
            _id: id,
            type,
            name: `${r.pick(PLACES)} ${type.replace('_', ' ')} ${r.int(1, 999)}`,
            place_id: r.digits(5),
            reported_date: T0 + Math.floor(r.next() * T_SPAN),
            contact: contact ? { _id: contact._id, parent: lineage(contact.parent) } : { _id: '' },
            external_id: r.chance(0.3) ? `EXT-${r.digits(6)}` : '',
            notes: r.pick(NOTES),
            geolocation: r.chance(0.5) ? `${(r.next() * 10 - 5).toFixed(6)} ${(r.next() * 10 + 30).toFixed(6)} 12.5` : '',
            meta: { created_by: `user${r.int(1, 50)}`, created_by_person_uuid: contact ? contact._id : '', created_by_place_uuid: parent ? parent._id : '' },
        };
        if (r.chance(0.8)) d.contact_id = contact ? contact._id : '';   // some rely on contact._id only
        if (parent) d.parent = lineage(parent);
        if (type === 'clinic') d.is_active = r.pick([true, false, 'true', 'false', undefined]);
        (type === 'district_hospital' ? this.dh : type === 'health_center' ? this.hc : this.clinics).push(node);
        return d;
    }

    person(r, id) {
        const parent = this.clinics.length && r.chance(0.9) ? r.pick(this.clinics) : r.pick(this.hc.length ? this.hc : this.dh);
        const born = T0 - r.int(0, 60 * 365) * 86400000;
        const d = {
            _id: id,
            type: 'person',
            name: personName(r),
            short_name: '',
            parent: lineage(parent),
            sex: r.pick(['female', 'male', 'female']),
            date_of_birth: new Date(born).toISOString().slice(0, 10),
            dob_method: r.pick(['', 'approx']),
            phone: r.chance(0.7) ? phone(r) : '',
            alternative_phone: r.chance(0.2) ? phone(r) : '',
            patient_id: r.chance(0.9) ? r.digits(5) : undefined,
            role: r.pick(['patient', 'patient', 'chw', 'other']),
            reported_date: T0 + Math.floor(r.next() * T_SPAN),
            notes: r.pick(NOTES),
            meta: { created_by: `user${r.int(1, 50)}`, created_by_person_uuid: '', created_by_place_uuid: parent._id },
            ephemeral_dob: { dob_calendar: '', dob_iso: new Date(born).toISOString().slice(0, 10) },
        };
        if (r.chance(0.05)) d.muted = T0 + Math.floor(r.next() * T_SPAN);
        this.persons.push({ _id: id, parent });
        return d;
    }

    report(r, id) {
        const p = r.pick(this.persons);                         // the patient
        const chw = r.chance(0.7) ? r.pick(this.persons) : p;
        const form = r.pick(FORMS);
        const t = T0 + Math.floor(r.next() * T_SPAN);
        const visits = [];
        for (let k = r.int(0, 4); k > 0; k--) visits.push({ date: new Date(t - k * 86400000 * 30).toISOString().slice(0, 10), outcome: r.pick(['seen', 'missed', 'referred']) });
        const d = {
            _id: id,
            type: 'data_record',
            form,
            from: r.chance(0.8) ? phone(r) : '',
            content_type: 'xml',
            reported_date: t,
            contact: { _id: chw._id, parent: lineage(chw.parent) },   // the submitter and its lineage
            fields: {
                inputs: { source: 'contact', contact: { _id: p._id, name: personName(r), parent: { parent: { contact: { name: personName(r), phone: phone(r) } } } } },
                patient_id: r.chance(0.7) ? r.digits(5) : '',
                patient_uuid: p._id,
                patient_name: personName(r),
                visit_date: new Date(t).toISOString().slice(0, 10),
                group_danger_signs: { danger_signs: r.chance(0.2) ? 'bleeding fever' : '', refer: r.chance(0.1) ? 'yes' : 'no' },
                vitals: { temperature: Number((35 + r.next() * 5).toFixed(1)), weight_kg: r.int(3, 90), muac_cm: Number((10 + r.next() * 15).toFixed(1)) },
                previous_visits: visits,
                meta: { instanceID: `uuid:${docId(this.o.seed, "", `instance:${id}`)}`, deprecatedID: '' },
            },
            hidden_fields: ['meta', 'inputs', 'previous_visits'],
            geolocation_log: [{ timestamp: t, recording: r.chance(0.5) ? { latitude: r.next() * 10 - 5, longitude: 30 + r.next() * 10, accuracy: r.int(3, 60) } : { code: 1, message: 'User denied Geolocation' } }],
            errors: [],
        };
        if (r.chance(0.05)) d.fields.place_id = r.digits(5);
        if (r.chance(0.03)) d.patient_id = r.digits(5);            // SMS-style, top-level
        return d;
    }

    userSettings(r) {
        const n = this.users++;
        const name = `${this.o.prefix}chw${n}`;
        const facility = this.clinics.length ? r.pick(this.clinics) : r.pick(this.dh);
        const contact = this.persons.length ? r.pick(this.persons) : null;
        return {
            _id: `org.couchdb.user:${name}`,
            type: 'user-settings',
            name,
            fullname: personName(r),
            email: `${name}@example.org`,
            phone: phone(r),
            known: r.chance(0.9),
            language: r.pick(LANGS),
            facility_id: facility._id,
            contact_id: contact && r.chance(0.9) ? contact._id : undefined,
            roles: r.chance(0.3) ? [r.pick(ROLES), r.pick(ROLES)] : [r.pick(ROLES)],
        };
    }
}

function feedback(r, id, prefix) {
    const t = T0 + Math.floor(r.next() * T_SPAN);
    const manual = r.chance(0.3);
    const d = {
        _id: `feedback-${new Date(t).toISOString()}-${id}`,
        type: 'feedback',
        meta: {
            time: new Date(t).toISOString(),
            user: { name: `${prefix}chw${r.int(0, 40)}` },
            language: r.pick(LANGS),
            url: `https://cht.example.org/#/${r.pick(['reports', 'contacts', 'tasks'])}/${id}`,
            app: r.pick(APPS),
            source: manual ? 'manual' : 'automatic',
            deviceId: r.hex(16),
        },
        info: manual ? { message: r.pick(['The form does not save', 'Sync is slow', 'Wrong name shown']) }
            : r.chance(0.5)
                ? { message: 'TypeError: Cannot read properties of undefined', stack: `TypeError: x\n    at f (main.js:1:${r.int(100, 99999)})`, cause: r.pick(['Error loading form', 'Sync failed']) }
                : r.pick(['Unhandled promise rejection', 'Error fetching settings']),
        log: [{ level: 'error', arguments: '["boom"]' }],
    };
    return d;
}

function telemetry(r, id, prefix) {
    const app = r.pick(APPS);
    const year = r.pick([2023, 2024]);
    const month = r.int(1, 12);
    const day = r.chance(0.8) ? r.int(1, 28) : undefined;
    const user = `${prefix}chw${r.int(0, 40)}`;
    const d = {
        _id: `telemetry-${year}-${month}-${day || 1}-${user}-${id}`,
        type: 'telemetry',
        metadata: { year, month, user, deviceId: r.hex(16), versions: { app, forms: { pregnancy: `1-${r.hex(8)}` }, settings: `2-${r.hex(8)}` } },
        metrics: {
            boot_time: { min: r.int(800, 3000), max: r.int(3000, 90000), sum: r.int(10000, 500000), count: r.int(1, 200), sumsqr: r.int(1e6, 1e9) },
            'search:contacts': { min: r.int(10, 100), max: r.int(100, 5000), sum: r.int(100, 50000), count: r.int(1, 500), sumsqr: r.int(1e4, 1e8) },
        },
        dbInfo: { db_name: `medic-user-${user}`, doc_count: r.int(100, 20000), update_seq: r.int(100, 50000), idb_attachment_format: 'binary', adapter: 'idb' },
    };
    if (day !== undefined) d.metadata.day = day;
    if (r.chance(0.85)) {
        d.device = {
            userAgent: 'Mozilla/5.0 (Linux; Android 10; Nokia 3.4) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Mobile Safari/537.36',
            hardwareConcurrency: r.pick([4, 8]),
            screen: { width: 720, height: 1520 },
            deviceInfo: {
                app: { version: `v1.${r.int(0, 5)}.0-4.feature`, packageName: 'org.medicmobile.webapp.mobile', versionCode: r.int(1, 30) },
                software: { androidVersion: r.pick(['10', '11', '12', '13']), osApiLevel: r.int(29, 33), osVersion: '4.14.190' },
                hardware: { manufacturer: r.pick(['HMD Global', 'samsung', 'TECNO']), model: r.pick(['Nokia 3.4', 'SM-A105F', 'TECNO KE5']), cpuInfo: { model: 'ARMv7', cores: 8 } },
                storage: { free: r.int(1e8, 2e10), total: 32e9 },
                ram: { free: r.int(1e8, 2e9), total: 3e9, threshold: 2e8 },
                network: { upSpeed: r.int(1000, 50000), downSpeed: r.int(1000, 90000) },
            },
        };
    }
    return d;
}

function sentinelInfo(r, o, i) {
    const medicId = i === 0 ? 'settings' : docId(o.seed, o.prefix, i);   // index 0 of medic is settings
    const t = T0 + Math.floor(r.next() * T_SPAN);
    const transitions = {};
    for (const name of TRANSITIONS) {
        if (r.chance(0.4)) transitions[name] = { last_rev: `${r.int(1, 4)}-${r.hex(32)}`, seq: `${r.int(1, 90000)}-g1AAAA${r.hex(24)}`, ok: r.chance(0.95) };
    }
    return {
        _id: `${medicId}-info`,
        type: 'info',
        doc_id: medicId,
        initial_replication_date: new Date(t).toISOString(),
        latest_replication_date: new Date(t + r.int(0, 30) * 86400000).toISOString(),
        transitions,
    };
}

function userDoc(r, o, i) {
    const name = `${o.prefix}chw${i}`;
    return {
        _id: `org.couchdb.user:${name}`,
        type: 'user',
        name,
        roles: r.chance(0.3) ? [r.pick(ROLES), 'mm-online'] : [r.pick(ROLES)],
        facility_id: docId(o.seed, o.prefix, r.int(0, 1000)),
        contact_id: docId(o.seed, o.prefix, r.int(0, 1000)),
        password_scheme: 'pbkdf2',
        iterations: 10,
        pbkdf2_prf: 'sha256',
        derived_key: crypto.createHash('sha256').update(`dk:${o.seed}:${name}`).digest('hex'),
        salt: crypto.createHash('md5').update(`salt:${o.seed}:${name}`).digest('hex'),
    };
}

function makeGenerator(o) {
    if (o.kind === 'medic') {
        const m = new Medic(o);
        for (let i = 0; i < o.start; i++) m.doc(i);   // replay: the hierarchy depends on earlier docs
        return (i) => m.doc(i);
    }
    return (i) => {
        const r = makeRng(`${o.kind}:${o.seed}:${o.prefix}:${i}`);
        if (o.kind === 'sentinel') return sentinelInfo(r, o, i);
        if (o.kind === 'users') return userDoc(r, o, i);
        const id = docId(o.seed, o.prefix, i);
        return r.chance(0.35) ? feedback(r, id, o.prefix) : telemetry(r, id, o.prefix);
    };
}

// ---- writing ----------------------------------------------------------------------

function server(urlText) {
    const u = new URL(urlText);
    const headers = { 'Content-Type': 'application/json', Accept: 'application/json' };
    if (u.username || u.password) {
        headers.Authorization = 'Basic ' + Buffer.from(`${decodeURIComponent(u.username)}:${decodeURIComponent(u.password)}`).toString('base64');
        u.username = ''; u.password = '';
    }
    return { base: u.toString().replace(/\/+$/, ''), headers };
}

async function request(srv, method, path, body) {
    let lastErr;
    for (let attempt = 0; attempt < 3; attempt++) {    // a reused idle connection may be closed
        try {
            const res = await fetch(srv.base + path, { method, headers: srv.headers, body: body === undefined ? undefined : JSON.stringify(body) });
            const text = await res.text();
            let json; try { json = JSON.parse(text); } catch { json = text; }
            return { status: res.status, json };
        } catch (e) { lastErr = e; await new Promise((ok) => setTimeout(ok, 200 * (attempt + 1))); }
    }
    throw lastErr;
}

// one chunk to stdout, waiting for a full pipe to drain: without the wait,
// a million documents queue in memory until the write fails with ENOBUFS
function dumpWrite(text) {
    if (process.stdout.write(text)) return Promise.resolve();
    return new Promise((resolve) => process.stdout.once('drain', resolve));
}

async function main() {
    const o = parseArgs(process.argv.slice(2));
    const gen = makeGenerator(o);
    const byType = {};
    const typeOf = (d) => d.type || (d._id === 'settings' ? 'settings' : 'none');
    const end = o.start + o.count;
    let bytes = 0;

    if (o.dump) {
        const out = [];
        for (let i = o.start; i < end; i++) {
            const d = JSON.parse(JSON.stringify(gen(i)));   // drop undefined members
            byType[typeOf(d)] = (byType[typeOf(d)] || 0) + 1;
            out.push(JSON.stringify(d));
            if (out.length >= 1000) { await dumpWrite(out.join('\n') + '\n'); out.length = 0; }
        }
        if (out.length) await dumpWrite(out.join('\n') + '\n');
        process.stderr.write(JSON.stringify({ db: o.db || null, docs: o.count, by_type: byType }) + '\n');
        return;
    }

    const srv = server(o.url);
    const dbPath = '/' + encodeURIComponent(o.db);
    const created = await request(srv, 'PUT', dbPath);
    if (created.status !== 201 && created.status !== 202 && created.status !== 412) {
        die(`PUT ${o.db}: HTTP ${created.status} ${JSON.stringify(created.json)}`);
    }

    const started = Date.now();
    let errors = 0, existing = 0;
    const errorSamples = [];
    const inFlight = new Set();
    for (let i = o.start; i < end;) {
        const docs = [];
        for (; i < end && docs.length < o.batch; i++) {
            const d = JSON.parse(JSON.stringify(gen(i)));
            byType[typeOf(d)] = (byType[typeOf(d)] || 0) + 1;
            docs.push(d);
        }
        const body = { docs };
        bytes += JSON.stringify(body).length;
        const p = request(srv, 'POST', `${dbPath}/_bulk_docs`, body).then(({ status, json }) => {
            if (status !== 201 && status !== 200 || !Array.isArray(json)) {
                errors += docs.length;
                errorSamples.push(`HTTP ${status} ${JSON.stringify(json).slice(0, 200)}`);
                return;
            }
            for (const row of json) {             // results may be out of order: by id
                if (!row.error) continue;
                if (row.error === 'conflict' && row.id === 'settings') { existing++; continue; }
                errors++;
                if (errorSamples.length < 5) errorSamples.push(`${row.id}: ${row.error} ${row.reason || ''}`);
            }
        });
        inFlight.add(p);
        p.finally(() => inFlight.delete(p));
        if (inFlight.size >= 4) await Promise.race(inFlight);
    }
    await Promise.all(inFlight);
    const summary = { db: o.db, docs: o.count, by_type: byType, avg_bytes: o.count ? Math.round(bytes / o.count) : 0, seconds: (Date.now() - started) / 1000, errors };
    if (existing) summary.settings_existed = true;
    process.stdout.write(JSON.stringify(summary) + '\n');
    for (const s of errorSamples.slice(0, 5)) process.stderr.write(`gen-cht: ${s}\n`);
    if (errors) process.exit(1);
}

main().catch((e) => { process.stderr.write(`gen-cht: ${e && e.stack || e}\n`); process.exit(1); });
