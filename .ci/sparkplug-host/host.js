#!/usr/bin/env node
// A Sparkplug B host application for the interop tests of m2mbridge's
// Sparkplug edge node (issue 13): software nobody here wrote decodes and
// judges what the edge node puts on the wire.
//
//   node host.js --url mqtt://127.0.0.1:1883 --group plant1 [--client-id ID] [--format text]
//   (or MQTT_URL and SPARKPLUG_GROUP in the environment)
//
// It subscribes to spBv1.0/{group}/# (MQTT 5, QoS 1, retain as published, so
// that the QoS and retain flag the edge node used are seen), decodes every
// payload with Eclipse Tahu's sparkplug-payload 1.0.3, and writes one JSON
// object per line on stdout:
//
//   {"kind":"ready"}                       connected and subscribed
//   {"kind":"violation","rule":...}        a Sparkplug rule the next message broke
//   {"kind":"message", ...}                every message, decoded (see record())
//   {"kind":"sent","id":...,"topic":...}   a command of stdin was published
//   {"kind":"error","id":...,"detail":...} a command of stdin was refused
//
// With --format text it writes one line per message for a person to read
// instead (the tests read JSON).
//
// Commands are JSON lines on stdin (see command()): an NCMD rebirth, an NCMD
// or DCMD writing a metric by name or by the alias of its birth, and a STATE
// message of a primary host. The host exits when stdin ends.
//
// Integers of 64 bits are written as exact JSON numbers (never rounded
// through a double). Values are taken from the protobuf fields themselves:
// Tahu's decoder reads a UInt32 only from long_value, while the spec (6.4.17)
// puts it in int_value, so both are accepted here and the field is reported.
'use strict';

const mqtt = require('mqtt');
const readline = require('readline');
const Long = require('long');
const sparkplug = require('sparkplug-payload').get('spBv1.0');
const proto = require('sparkplug-payload/lib/sparkplugPayloadProto').org.eclipse.tahu.protobuf;

const NS = 'spBv1.0';

function arg(name, env, def) {
  const i = process.argv.indexOf('--' + name);
  if (i >= 0 && i + 1 < process.argv.length) return process.argv[i + 1];
  return process.env[env] || def;
}

const url = arg('url', 'MQTT_URL', 'mqtt://127.0.0.1:1883');
const group = arg('group', 'SPARKPLUG_GROUP', '');
const format = arg('format', 'SPARKPLUG_HOST_FORMAT', 'json');
const clientId = arg('client-id', 'SPARKPLUG_HOST_CLIENT_ID',
  'm2mb-sphost-' + process.pid + '-' + Math.random().toString(16).slice(2, 8));
if (!group) {
  process.stderr.write('host.js: --group (or SPARKPLUG_GROUP) is required\n');
  process.exit(2);
}

// ---- output: JSON lines with exact 64-bit integers ----

const BIG = '\u0000big:';
function replacer(_k, v) {
  if (typeof v === 'bigint') return BIG + v.toString();
  if (v instanceof Long) return BIG + v.toString();
  if (Buffer.isBuffer(v) || v instanceof Uint8Array) return Buffer.from(v).toString('hex');
  if (typeof v === 'number' && !Number.isFinite(v)) return String(v); // NaN, Infinity
  return v;
}
function emit(obj) {
  if (format === 'text') {
    process.stdout.write(text(obj) + '\n');
    return;
  }
  const s = JSON.stringify(obj, replacer).replace(/"\\u0000big:(-?\d+)"/g, '$1');
  process.stdout.write(s + '\n');
}

// f32 writes a Float's value with the fewest digits that give back the
// same float32 (22.9075069 rather than its double, 22.907506942749023).
function f32(v) {
  for (let p = 1; p <= 9; p++) {
    const s = Number(v.toPrecision(p));
    if (Math.fround(s) === v) return String(s);
  }
  return String(v);
}

// text is the line of obj for a person watching (--format text): one line
// per message with its metrics, name(alias)=value Datatype and flags.
function text(obj) {
  const val = (v) => (typeof v === 'bigint' ? v.toString() : JSON.stringify(v));
  switch (obj.kind) {
    case 'message': {
      const where = obj.node + (obj.device ? '/' + obj.device : '');
      let line = `${obj.type} ${where}`;
      if (obj.seq !== undefined) line += ` seq=${obj.seq}`;
      if (obj.cleared) return line + ' (retained message cleared)';
      if (obj.error) return line + ' ' + obj.error;
      const ms = (obj.metrics || []).map((m) => {
        let x = (m.metric !== undefined ? m.metric : '?') + (m.alias !== undefined ? `(${m.alias})` : '');
        x += '=' + (m.is_null ? 'null' : m.datatype === 'Float' && typeof m.value === 'number' ? f32(m.value) : val(m.value));
        if (m.datatype) x += ' ' + m.datatype;
        const p = m.properties || {};
        if (p.engUnit) x += ' ' + p.engUnit.value;
        if (p.Quality) x += ' q=' + val(p.Quality.value);
        if (m.is_historical) x += ' historical';
        return x;
      });
      if (obj.stale) line += ' (stale)';
      if (obj.before_birth) line += ' (before any NBIRTH seen)';
      return ms.length ? line + ': ' + ms.join(', ') : line;
    }
    case 'violation':
      return `VIOLATION ${obj.rule}: ${obj.topic}: ${obj.detail}`;
    case 'sent':
      return `sent ${obj.id}: ${obj.topic}`;
    case 'error':
      return `error ${obj.id || ''}: ${obj.detail}`;
    case 'ready':
      return `ready (${obj.client_id}), watching ${NS}/${group}/#`;
    default:
      return JSON.stringify(obj, replacer);
  }
}

// ---- decoding ----

const TYPES = ['Unknown', 'Int8', 'Int16', 'Int32', 'Int64', 'UInt8', 'UInt16', 'UInt32', 'UInt64',
  'Float', 'Double', 'Boolean', 'String', 'DateTime', 'Text', 'UUID', 'DataSet', 'Bytes', 'File',
  'Template', 'PropertySet', 'PropertySetList'];
const TYPE_IDS = Object.fromEntries(TYPES.map((t, i) => [t, i]));

// The field the spec (6.4.17) assigns to each datatype; UInt32 is also
// accepted in long_value, where the reference encoders put it.
const FIELDS = {
  Int8: ['intValue'], Int16: ['intValue'], Int32: ['intValue'], UInt8: ['intValue'], UInt16: ['intValue'],
  UInt32: ['intValue', 'longValue'], Int64: ['longValue'], UInt64: ['longValue'], DateTime: ['longValue'],
  Float: ['floatValue'], Double: ['doubleValue'], Boolean: ['booleanValue'],
  String: ['stringValue'], Text: ['stringValue'], UUID: ['stringValue'],
  Bytes: ['bytesValue'], File: ['bytesValue'], DataSet: ['datasetValue'], Template: ['templateValue'],
  PropertySet: ['propertysetValue'], PropertySetList: ['propertysetsValue'],
};

// The ranges of the integer datatypes that travel in int_value (a uint32):
// Int8, Int16 and Int32 as two's complement of 32 bits, sign-extended.
const RANGES = {
  Int8: [-128, 127], Int16: [-32768, 32767], UInt8: [0, 255], UInt16: [0, 65535],
};

function snake(field) { return field.replace(/[A-Z]/g, (c) => '_' + c.toLowerCase()); }

function toBig(v) {
  if (v instanceof Long) return BigInt(v.toString());
  return BigInt(v);
}

// value returns the value of a raw protobuf metric or property value of the
// given datatype, read from the field it is in: {value, field}, where value
// is a JS value (a BigInt for 64-bit integers) and field the protobuf field
// name, or null when no field is set.
function value(type, raw) {
  const field = raw.value; // the oneof's set field, by protobufjs
  if (!field) return { value: null, field: null };
  let v = raw[field];
  switch (field) {
    case 'intValue':
      if (type === 'Int8' || type === 'Int16' || type === 'Int32') v = v | 0; // two's complement
      else v = v >>> 0;
      break;
    case 'longValue':
      v = toBig(v);
      if (type === 'Int64') v = BigInt.asIntN(64, v);
      else v = BigInt.asUintN(64, v);
      break;
    case 'floatValue':
    case 'doubleValue':
    case 'booleanValue':
    case 'stringValue':
      break;
    case 'bytesValue':
      v = Buffer.from(v).toString('hex');
      break;
    default:
      v = '(' + field + ')';
  }
  return { value: v, field: snake(field) };
}

function decodeProperties(raw) {
  if (!raw) return undefined;
  const out = {};
  const keys = raw.keys || [];
  const values = raw.values || [];
  for (let i = 0; i < keys.length; i++) {
    const pv = values[i] || {};
    const type = TYPES[pv.type] || 'Unknown(' + pv.type + ')';
    const v = pv.isNull ? { value: null, field: null } : value(type, pv);
    out[keys[i]] = { type, value: v.value, field: v.field, is_null: !!pv.isNull };
  }
  return out;
}

function has(obj, k) { return Object.prototype.hasOwnProperty.call(obj, k); }

// decodeMetric decodes one metric: tahu's decoded form gives the name,
// alias, type and flags; the raw protobuf form gives the exact value and the
// field it was in.
function decodeMetric(tahu, raw) {
  const m = {};
  if (has(raw, 'name')) m.name = raw.name;
  if (has(raw, 'alias')) m.alias = toBig(raw.alias);
  m.datatype = has(raw, 'datatype') ? (tahu.type || 'Unknown(' + raw.datatype + ')') : null;
  if (has(raw, 'timestamp')) m.timestamp = toBig(raw.timestamp);
  m.is_historical = !!tahu.isHistorical;
  m.is_transient = !!tahu.isTransient;
  m.is_null = !!raw.isNull;
  const v = value(m.datatype, raw);
  m.value = raw.isNull ? null : v.value;
  m.field = v.field;
  const props = decodeProperties(raw.properties);
  if (props) m.properties = props;
  return m;
}

// ---- the rules, per edge node, from the wire ----

// A node's session as the host sees it: bdSeq and seq of its births, the
// metrics of the node and of every device born in this session.
const nodes = new Map();
function nodeState(node) {
  let s = nodes.get(node);
  if (!s) {
    s = { seen: false, born: false, bdSeq: null, pastBdSeqs: new Set(), seq: null, metrics: null, devices: new Map(), aliases: new Map() };
    nodes.set(node, s);
  }
  return s;
}

// A set of born metrics: by name and by alias.
function metricSet() { return { byName: new Map(), byAlias: new Map() }; }

function violations(msg, rec) {
  const out = [];
  const v = (rule, detail) => out.push({ kind: 'violation', rule, topic: rec.topic, type: rec.type, node: rec.node, device: rec.device, detail });
  const t = rec.type;
  const s = nodeState(rec.node);
  const dataLike = ['NBIRTH', 'DBIRTH', 'NDATA', 'DDATA', 'DDEATH'].includes(t);

  // MQTT: births, data and device deaths QoS 0 and not retained; the
  // NDEATH Will QoS 1 and not retained (spec 4.1.1, 5.2, 5.4, 5.6, 5.7).
  if (dataLike && rec.qos !== 0) v('qos', `${t} published with QoS ${rec.qos}, want 0`);
  if (t === 'NDEATH' && rec.qos !== 1) v('qos', `NDEATH delivered with QoS ${rec.qos}, want 1 (the Will's QoS)`);
  if ((dataLike || t === 'NDEATH') && rec.retain) v('retain', `${t} is retained`);

  // Timestamp on every edge node message but NDEATH (6.4.1, 6.2).
  if (dataLike && rec.timestamp === undefined) v('timestamp', `${t} payload has no timestamp`);

  // seq: 0 on NBIRTH, then one more per message, 255 followed by 0, across
  // NBIRTH, DBIRTH, NDATA, DDATA and DDEATH (6.4.5); NDEATH has none.
  if (t === 'NDEATH' && rec.seq !== undefined) v('ndeath-seq', `NDEATH carries seq ${rec.seq}`);
  if (dataLike) {
    if (rec.seq === undefined) {
      v('seq', `${t} has no seq`);
    } else if (t === 'NBIRTH') {
      if (rec.seq !== 0n) v('nbirth-seq', `NBIRTH seq ${rec.seq}, want 0`);
    } else if (s.born && s.seq !== null) {
      const want = (s.seq + 1n) % 256n;
      if (rec.seq !== want) v('seq', `seq ${rec.seq} after ${s.seq}, want ${want}`);
    }
    if (rec.seq !== undefined && rec.seq > 255n) v('seq', `seq ${rec.seq} is above 255`);
  }

  // Every metric of a birth has a name and a datatype, a value in the
  // datatype's field or is_null; names are unique in the birth.
  const checkBirthMetrics = () => {
    const names = new Set();
    for (const m of rec.metrics) {
      if (m.name === undefined || m.name === '') v('metric-name', `a ${t} metric has no name (alias ${m.alias})`);
      else if (names.has(m.name)) v('name-unique', `metric ${JSON.stringify(m.name)} twice in ${t}`);
      names.add(m.name);
      if (m.datatype === null || !FIELDS[m.datatype]) v('metric-datatype', `${t} metric ${label(m)} has datatype ${m.datatype}`);
      if (!m.is_null && m.field === null) v('value-missing', `${t} metric ${label(m)} has no value and is not is_null`);
    }
  };
  // A value in a field its datatype does not use, and the Quality property
  // as an Int32 (6.4.9.1).
  const checkValues = (set) => {
    for (const m of rec.metrics) {
      const dt = m.datatype || (set && bornMetric(set, m) || {}).datatype;
      if (m.field && dt && FIELDS[dt] && !FIELDS[dt].includes(m.field.replace(/_([a-z])/g, (_x, c) => c.toUpperCase()))) {
        v('value-field', `metric ${label(m)} of datatype ${dt} has its value in ${m.field}`);
      }
      const range = RANGES[dt];
      if (range && typeof m.value === 'number' && (m.value < range[0] || m.value > range[1])) {
        v('value-range', `metric ${label(m)} of datatype ${dt} holds ${m.value}, outside ${range[0]}..${range[1]}`);
      }
      if (m.properties && m.properties.Quality && m.properties.Quality.type !== 'Int32') {
        v('quality-type', `metric ${label(m)} Quality property is ${m.properties.Quality.type}, want Int32`);
      }
      if (m.is_historical && m.timestamp === undefined) v('historical-timestamp', `historical metric ${label(m)} has no timestamp`);
    }
  };
  // Aliases unique across the edge node: the node's and every device's.
  const addAliases = (owner, set) => {
    for (const m of rec.metrics) {
      if (m.alias === undefined || m.name === undefined) continue;
      const key = owner + '/' + m.name;
      const prev = s.aliases.get(m.alias);
      if (prev !== undefined && prev !== key) v('alias-unique', `alias ${m.alias} of ${key} is already ${prev}`);
      else s.aliases.set(m.alias, key);
    }
    for (const m of rec.metrics) {
      if (m.name === undefined) continue;
      set.byName.set(m.name, m);
      if (m.alias !== undefined) set.byAlias.set(m.alias, m);
    }
  };
  // Data names born metrics: by alias alone where the birth gave one
  // (6.4.4, aliases), with the birth's datatype if it repeats one.
  const checkData = (set) => {
    for (const m of rec.metrics) {
      const born = bornMetric(set, m);
      if (!born) {
        v('data-unknown-metric', `${t} metric ${label(m)} was not in the birth`);
        continue;
      }
      m.metric = born.name;
      if (born.alias !== undefined && m.name !== undefined) v('data-alias', `${t} metric ${JSON.stringify(m.name)} sent by name, its birth gave alias ${born.alias}`);
      if (m.datatype !== null && m.datatype !== born.datatype) v('data-datatype', `${t} metric ${label(m)} is ${m.datatype}, born ${born.datatype}`);
    }
  };

  // A host that joins while the edge node is already born has seen no
  // NBIRTH to judge its data by: it marks the messages and judges from the
  // next NBIRTH on (a real host would ask for a rebirth, which the command
  // "rebirth" does).
  if (!s.seen && t !== 'NBIRTH' && t !== 'NDEATH') {
    rec.before_birth = true;
    if (t === 'DBIRTH') { checkBirthMetrics(); checkValues(null); }
    return out;
  }

  switch (t) {
    case 'NBIRTH': {
      checkBirthMetrics();
      checkValues(null);
      const bd = rec.metrics.find((m) => m.name === 'bdSeq');
      if (!bd) v('nbirth-bdseq', 'NBIRTH has no bdSeq metric');
      else if (bd.datatype !== 'Int64') v('nbirth-bdseq', `NBIRTH bdSeq is ${bd.datatype}, want Int64`);
      const rb = rec.metrics.find((m) => m.name === 'Node Control/Rebirth');
      if (!rb) v('nbirth-rebirth', 'NBIRTH has no Node Control/Rebirth metric');
      else if (rb.datatype !== 'Boolean' || rb.value !== false) v('nbirth-rebirth', `Node Control/Rebirth is ${rb.datatype} ${rb.value}, want Boolean false`);
      if (s.bdSeq !== null) s.pastBdSeqs.add(s.bdSeq);
      s.born = true;
      s.seen = true;
      s.bdSeq = bd && typeof bd.value === 'bigint' ? bd.value : null;
      rec.bdSeq = s.bdSeq === null ? undefined : s.bdSeq;
      s.devices = new Map();
      s.aliases = new Map();
      s.metrics = metricSet();
      addAliases('', s.metrics);
      break;
    }
    case 'DBIRTH': {
      if (!s.born) v('not-born', `DBIRTH of ${rec.device} before the NBIRTH of its edge node`);
      checkBirthMetrics();
      checkValues(null);
      // A device born again (after its DDEATH) gives up its old aliases.
      for (const [a, key] of s.aliases) if (key.startsWith(rec.device + '/')) s.aliases.delete(a);
      const set = metricSet();
      addAliases(rec.device, set);
      s.devices.set(rec.device, { alive: true, metrics: set });
      break;
    }
    case 'NDATA':
      if (!s.born) v('not-born', 'NDATA before NBIRTH');
      else { checkData(s.metrics); checkValues(s.metrics); }
      break;
    case 'DDATA': {
      const d = s.devices.get(rec.device);
      if (!s.born) v('not-born', `DDATA of ${rec.device} before the NBIRTH of its edge node`);
      else if (!d) v('not-born', `DDATA of ${rec.device} before its DBIRTH`);
      else {
        if (!d.alive) v('not-born', `DDATA of ${rec.device} after its DDEATH`);
        checkData(d.metrics);
        checkValues(d.metrics);
      }
      break;
    }
    case 'DDEATH': {
      const d = s.devices.get(rec.device);
      if (!s.born) v('not-born', `DDEATH of ${rec.device} before the NBIRTH of its edge node`);
      else if (!d) v('not-born', `DDEATH of ${rec.device} that was never born`);
      else d.alive = false;
      break;
    }
    case 'NDEATH': {
      // The Will carries the bdSeq of its connection, which the NBIRTH of
      // that connection repeats (4.2.1.1.2, 5.4). An NDEATH of an earlier
      // session (a Will that overtook nothing) is stale, not an error.
      const bd = rec.metrics.find((m) => m.name === 'bdSeq');
      if (!bd) { v('ndeath-bdseq', 'NDEATH has no bdSeq metric'); break; }
      if (bd.datatype !== 'Int64') v('ndeath-bdseq', `NDEATH bdSeq is ${bd.datatype}, want Int64`);
      rec.bdSeq = bd.value;
      rec.birth_bdSeq = s.bdSeq === null ? undefined : s.bdSeq;
      if (s.bdSeq !== null && bd.value === s.bdSeq) {
        s.born = false;
        for (const d of s.devices.values()) d.alive = false;
      } else if (s.pastBdSeqs.has(bd.value)) {
        rec.stale = true;
      } else if (s.bdSeq !== null) {
        v('ndeath-bdseq', `NDEATH bdSeq ${bd.value} is not the bdSeq ${s.bdSeq} of the NBIRTH`);
      }
      break;
    }
    default:
      break;
  }
  if (dataLike && rec.seq !== undefined && (t === 'NBIRTH' || s.born)) s.seq = rec.seq;
  return out;
}

function bornMetric(set, m) {
  if (!set) return undefined;
  if (m.alias !== undefined && set.byAlias.has(m.alias)) return set.byAlias.get(m.alias);
  if (m.name !== undefined) return set.byName.get(m.name);
  return undefined;
}

function label(m) { return m.name !== undefined ? JSON.stringify(m.name) : 'alias ' + m.alias; }

// record decodes one message of the group into its JSON line.
function record(topic, payload, packet) {
  const parts = topic.split('/');
  const rec = { kind: 'message', topic, type: parts[2], group: parts[1], node: parts[3], qos: packet.qos, retain: !!packet.retain };
  if (parts.length > 4) rec.device = parts.slice(4).join('/');
  rec.received = Date.now();
  if (payload.length === 0 && packet.retain) {
    // A zero-length retained message deletes a retained one at the broker
    // (MQTT 3.3.1.3): not a Sparkplug message, not judged.
    rec.cleared = true;
    return { rec, raw: null };
  }
  let raw;
  let tahu;
  try {
    raw = proto.Payload.decode(payload);
    tahu = sparkplug.decodePayload(payload);
  } catch (e) {
    rec.error = 'decode: ' + e.message;
    return { rec, raw: null };
  }
  if (has(raw, 'timestamp')) rec.timestamp = toBig(raw.timestamp);
  if (has(raw, 'seq')) rec.seq = toBig(raw.seq);
  if (has(raw, 'uuid')) rec.uuid = raw.uuid;
  const rawMetrics = raw.metrics || [];
  const tahuMetrics = tahu.metrics || [];
  rec.metrics = rawMetrics.map((r, i) => decodeMetric(tahuMetrics[i] || {}, r));
  for (const m of rec.metrics) if (m.name !== undefined) m.metric = m.name;
  return { rec, raw };
}

// ---- commands (stdin) ----

// encodeMetric turns a command's metric into tahu's form: the value of a
// 64-bit type may be given as a string of digits, kept exact.
function commandMetric(c, set) {
  const m = { type: c.type, value: c.value };
  if (c.type === undefined || !TYPE_IDS[c.type]) throw new Error(`type ${JSON.stringify(c.type)} is not a Sparkplug datatype`);
  if (['Int64', 'UInt64', 'DateTime', 'UInt32'].includes(c.type) && c.value !== null) m.value = Long.fromString(String(c.value), c.type !== 'Int64');
  const by = c.by || (c.alias !== undefined ? 'alias' : 'name');
  let alias = c.alias;
  if (alias === undefined && (by === 'alias' || by === 'both')) {
    const born = set && set.byName.get(c.name);
    if (!born || born.alias === undefined) throw new Error(`no alias known for ${JSON.stringify(c.name)} (no birth seen with one)`);
    alias = born.alias;
  }
  if (by !== 'alias') m.name = c.name;
  if (alias !== undefined) m.alias = Long.fromString(String(alias), true);
  if (c.timestamp !== undefined) m.timestamp = c.timestamp;
  return m;
}

function command(client, c) {
  const node = c.node;
  let topic;
  let payload;
  let opts = { qos: 0, retain: false };
  switch (c.cmd) {
    case 'rebirth':
      topic = `${NS}/${group}/NCMD/${node}`;
      payload = sparkplug.encodePayload({ timestamp: Date.now(), metrics: [{ name: 'Node Control/Rebirth', type: 'Boolean', value: c.value === undefined ? true : c.value }] });
      break;
    case 'ncmd':
    case 'dcmd': {
      const s = nodeState(node);
      let set = s.metrics;
      if (c.cmd === 'dcmd') {
        topic = `${NS}/${group}/DCMD/${node}/${c.device}`;
        const d = s.devices.get(c.device);
        set = d && d.metrics;
      } else {
        topic = `${NS}/${group}/NCMD/${node}`;
      }
      const metrics = (c.metrics || [c]).map((m) => commandMetric(m, set));
      payload = sparkplug.encodePayload({ timestamp: Date.now(), metrics });
      break;
    }
    case 'state':
      // A primary host's STATE (spec 3.0, 5.9 and 7.2): JSON, QoS 1, retained.
      topic = `${NS}/STATE/${c.host}`;
      payload = c.clear ? Buffer.alloc(0) : Buffer.from(JSON.stringify({ online: !!c.online, timestamp: c.timestamp === undefined ? Date.now() : c.timestamp }));
      opts = { qos: 1, retain: c.retain === undefined ? true : !!c.retain };
      break;
    default:
      throw new Error(`unknown cmd ${JSON.stringify(c.cmd)} (rebirth, ncmd, dcmd, state)`);
  }
  if (!node && c.cmd !== 'state') throw new Error('node is required');
  if (c.cmd === 'dcmd' && !c.device) throw new Error('device is required');
  client.publish(topic, payload, opts, (err) => {
    if (err) emit({ kind: 'error', id: c.id, detail: 'publish: ' + err.message });
    else emit({ kind: 'sent', id: c.id, topic });
  });
}

// ---- main ----

const client = mqtt.connect(url, { clientId, protocolVersion: 5, clean: true, reconnectPeriod: 500, connectTimeout: 10000 });
let ready = false;
client.on('connect', () => {
  client.subscribe(`${NS}/${group}/#`, { qos: 1, rap: true }, (err) => {
    if (err) {
      emit({ kind: 'error', detail: 'subscribe: ' + err.message });
      process.exit(1);
    }
    if (!ready) emit({ kind: 'ready', client_id: clientId });
    ready = true;
  });
});
client.on('error', (err) => emit({ kind: 'error', detail: 'mqtt: ' + err.message }));
client.on('message', (topic, payload, packet) => {
  const { rec, raw } = record(topic, payload, packet);
  const parts = topic.split('/');
  let vs = [];
  if (parts.length < 4 || parts[0] !== NS) {
    vs.push({ kind: 'violation', rule: 'topic', topic, detail: 'not a Sparkplug topic' });
  } else if (rec.cleared) {
    // nothing to judge
  } else if (!raw) {
    vs.push({ kind: 'violation', rule: 'decode', topic, type: rec.type, node: rec.node, device: rec.device, detail: rec.error });
  } else if (!['NCMD', 'DCMD'].includes(rec.type)) {
    vs = violations(raw, rec);
  } else {
    // Commands are not judged; their metrics are named from the births.
    const s = nodeState(rec.node);
    const d = rec.device ? s.devices.get(rec.device) : null;
    const set = rec.device ? d && d.metrics : s.metrics;
    for (const m of rec.metrics) {
      const born = bornMetric(set, m);
      if (born) m.metric = born.name;
    }
  }
  // The violations first: a reader that has the message has its verdict.
  for (const v of vs) emit(v);
  emit(rec);
});

const rl = readline.createInterface({ input: process.stdin });
rl.on('line', (line) => {
  if (!line.trim()) return;
  let c;
  try {
    c = JSON.parse(line);
  } catch (e) {
    emit({ kind: 'error', detail: 'command is not JSON: ' + e.message });
    return;
  }
  try {
    command(client, c);
  } catch (e) {
    emit({ kind: 'error', id: c.id, detail: e.message });
  }
});
rl.on('close', () => client.end(false, {}, () => process.exit(0)));
process.on('SIGTERM', () => client.end(true, {}, () => process.exit(0)));
