// The reference MCAP library (npm @mcap/core, zstd through @foxglove/wasm-zstd) on either side of
// shmring's files: the interop tests (test_interop.py) run it with node.
//
//   node mcap_interop.js read FILE     prints every message the reference reader reads, in the
//                                      format of tests/record/mcap_dump.cc (one JSON object a line),
//                                      read twice: indexed (through the summary, CRCs checked) and
//                                      streamed (record by record, CRCs checked); they must agree
//   node mcap_interop.js write FILE MODE   writes a file with the reference writer: MODE zstd, none
//                                      (uncompressed chunks) or unchunked (messages outside chunks)
// Exit status 1 with the error on stderr when the reference library refuses the file.
"use strict";

const fs = require("fs");
const { McapIndexedReader, McapStreamReader, McapWriter } = require("@mcap/core");
const zstd = require("@foxglove/wasm-zstd");

const decompressHandlers = {
  zstd: (data, size) => zstd.decompress(data, Number(size)),
};

function hex(bytes) {
  return Buffer.from(bytes).toString("hex");
}

function messageLine(topic, m) {
  return JSON.stringify({
    message: {
      topic,
      channel_id: m.channelId,
      sequence: m.sequence,
      log_time: m.logTime.toString(),
      publish_time: m.publishTime.toString(),
      data: hex(m.data),
    },
  });
}

class FileReadable {
  constructor(fd) {
    this.fd = fd;
  }
  async size() {
    return BigInt(fs.fstatSync(this.fd).size);
  }
  async read(offset, length) {
    const buffer = Buffer.alloc(Number(length));
    fs.readSync(this.fd, buffer, 0, Number(length), Number(offset));
    return new Uint8Array(buffer.buffer, buffer.byteOffset, buffer.length);
  }
}

async function read(path) {
  await zstd.isLoaded;
  const fd = fs.openSync(path, "r");
  const indexed = await McapIndexedReader.Initialize({ readable: new FileReadable(fd), decompressHandlers });
  const lines = [];
  for await (const m of indexed.readMessages({ validateCrcs: true })) {
    lines.push(messageLine(indexed.channelsById.get(m.channelId).topic, m));
  }
  const metadata = [];
  for await (const m of indexed.readMetadata()) {
    metadata.push(JSON.stringify({ metadata: { name: m.name, entries: Object.fromEntries(m.metadata) } }));
  }
  fs.closeSync(fd);

  // The same file streamed, record by record (no summary needed), CRCs checked.
  const stream = new McapStreamReader({ decompressHandlers, validateCrcs: true });
  stream.append(fs.readFileSync(path));
  const channels = new Map();
  const streamed = [];
  let record;
  let sawFooter = false;
  while ((record = stream.nextRecord()) != undefined) {
    if (record.type === "Channel") channels.set(record.id, record);
    if (record.type === "Message") streamed.push(messageLine(channels.get(record.channelId).topic, record));
    if (record.type === "Footer") sawFooter = true;
  }
  if (!sawFooter || !stream.done()) throw new Error("the stream reader did not reach the footer");
  // Indexed reading is by log time; shmring writes in log-time order, so the orders agree.
  if (streamed.length !== lines.length || streamed.some((l, i) => l !== lines[i])) {
    throw new Error(`indexed (${lines.length}) and streamed (${streamed.length}) reads differ`);
  }
  const stats = indexed.statistics;
  for (const l of lines) console.log(l);
  for (const l of metadata) console.log(l);
  console.log(
    JSON.stringify({
      summary: {
        complete: true,
        messages: lines.length,
        channels: indexed.channelsById.size,
        statistics_messages: stats ? stats.messageCount.toString() : null,
        chunks: indexed.chunkIndexes.length,
        library: indexed.header.library,
      },
    }),
  );
}

class FileWritable {
  constructor(fd) {
    this.fd = fd;
    this.offset = 0n;
  }
  position() {
    return this.offset;
  }
  async write(buffer) {
    fs.writeSync(this.fd, buffer);
    this.offset += BigInt(buffer.byteLength);
  }
}

async function write(path, mode) {
  await zstd.isLoaded;
  const fd = fs.openSync(path, "w");
  const writer = new McapWriter({
    writable: new FileWritable(fd),
    useChunks: mode !== "unchunked",
    chunkSize: 1024,
    compressChunk:
      mode === "zstd" ? (data) => ({ compression: "zstd", compressedData: zstd.compress(data, 3) }) : undefined,
  });
  await writer.start({ profile: "x-reference", library: "mcap-ts reference" });
  const schema = await writer.registerSchema({
    name: "demo.Point",
    encoding: "jsonschema",
    data: Buffer.from('{"type":"object"}'),
  });
  const raw = await writer.registerChannel({ topic: "raw", messageEncoding: "", schemaId: 0, metadata: new Map() });
  const points = await writer.registerChannel({
    topic: "points",
    messageEncoding: "json",
    schemaId: schema,
    metadata: new Map([["unit", "m"]]),
  });
  for (let i = 0; i < 300; i++) {
    const t = 1700000000000000000n + BigInt(i) * 1000000n;
    const data =
      i % 2 === 0
        ? Buffer.from(`raw message ${i} ${"r".repeat(i % 50)}`)
        : Buffer.from(JSON.stringify({ x: i, y: -i }));
    await writer.addMessage({
      channelId: i % 2 === 0 ? raw : points,
      sequence: i,
      logTime: t,
      publishTime: t - 5n,
      data,
    });
    if (i === 150) await writer.addMetadata({ name: "halfway", metadata: new Map([["i", "150"]]) });
  }
  await writer.end();
  fs.closeSync(fd);
}

const [, , verb, path, mode] = process.argv;
const run = verb === "read" ? read(path) : verb === "write" ? write(path, mode || "zstd") : null;
if (run == null) {
  console.error("usage: node mcap_interop.js read FILE | write FILE [zstd|none|unchunked]");
  process.exit(2);
}
run.catch((e) => {
  console.error(String(e && e.stack ? e.stack : e));
  process.exit(1);
});
