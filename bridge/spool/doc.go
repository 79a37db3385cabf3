// Package spool is durable store-and-forward storage for one sink of a
// bridge: a bounded, append-only log of [bridge.Sample] values on local disk
// that keeps readings while a sink or the network is down and survives the
// process dying. [*Spool] implements [bridge.Spool]; the Bridge appends every
// sample accepted for a sink with the "spool" overflow policy, and the sink's
// writer reads the oldest with Peek and removes them with Ack only after the
// sink delivered them. Delivery is therefore at-least-once and in append
// order.
//
// Concurrency: one goroutine may Append while another Peeks and Acks (the
// way the Bridge uses it); all methods are safe to call concurrently, and
// Appends (and Peek/Ack pairs) are serialised.
//
// # On-disk format
//
// A spool directory holds segment files named by a 16-digit hexadecimal
// number ("0000000000000001.seg", ascending in append order) and a file named
// "cursor". All integers are little-endian.
//
// A segment starts with a 16-byte header: "m2mspool", the format version
// (uint32, 2) and 4 reserved bytes. Records follow back to back:
//
//	magic   4 bytes  C5 9A 3E D1
//	length  uint32   payload length, 16 .. MaxRecordBytes
//	crc     uint32   CRC-32C (Castagnoli) of the length field and the payload
//	payload length bytes: one sample
//
// A payload is: Seq (uint64, fixed 8 bytes so recovery reads it cheaply),
// the value kind, the quality and a flags byte (bit 0: the time is set, so
// the zero time.Time stays distinct from the Unix epoch); when the time is
// set its Unix seconds (zigzag varint) and nanoseconds (uvarint); the code
// (uvarint); the value: float64 bits (8 bytes), int64 (zigzag varint), uint64
// (uvarint), bool (one byte 0 or 1), string (uvarint length and bytes), or
// nothing for no value; then Source, Point, Unit and Reason, each a uvarint
// length and bytes. Every field of the Sample round-trips exactly, except
// that the time comes back in UTC and without a monotonic clock reading.
//
// When a segment is full it is sealed: a last record in the same framing
// whose payload has the kind byte 0xFF, which no sample has, holding the
// segment's record count (uint64, in the Seq position) and the highest Seq
// (uint64). Open trusts a valid seal instead of reading the segment.
//
// Right after the header of a version 2 segment comes a start record, in
// the same framing with the kind byte 0xFE: the record number of the
// segment's first sample (samples are numbered from 0 across segments and
// restarts) and a flag saying that the number follows on exactly from the
// previous segment's. Version 1 segments (no start record) are still read.
//
// The magic makes resynchronisation possible: after damage the reader
// searches for the next magic whose length and CRC check out, so one
// bit flip costs the one record it hit. One record is one sample, so Ack can
// stop anywhere and damage never costs a whole batch. (A string value that
// itself contains a whole framed record with a valid CRC could, only right
// after damage, be taken for a record when resynchronising; ordinary
// readings never do.)
//
// The cursor file holds the read position (segment and byte offset of the
// first unacknowledged record, and its record number after a second CRC
// that older readers ignore) in two 64-byte slots written alternately in
// place, each with a generation number and a CRC-32C; Open uses the valid
// slot with the higher generation, so a torn cursor write falls back to the
// previous position (replaying a little again) rather than losing data.
//
// # Bounds
//
// Segments are at most [Options.SegmentBytes] (16 MiB by default) and the
// files together at most about [Options.MaxBytes] (1 GiB by default). When an
// Append would go beyond MaxBytes the [FullPolicy] applies: [DropOldest]
// deletes the oldest segment(s), counts each lost sample in
// [Spool.Dropped] and logs it; [Block] makes Append wait until Acks free
// room or its context ends. Segments wholly acknowledged are deleted.
//
// Memory does not grow with the backlog: records are never indexed in
// memory. Open reads the seal of each sealed segment and streams only the
// segment holding the cursor and the last segment (at most two segments,
// whatever the backlog) through a 128 KiB buffer; Peek streams from the
// cursor through the same buffer. The
// state kept is a small struct per segment file (64 for 1 GiB at the
// defaults), the writer's buffer (about 1 MiB) and the samples of one Peek,
// so replaying a 1 GiB backlog needs a few MB (see BenchmarkReplayRSS).
//
// # Durability: what survives which failure
//
// Append writes each batch with one write system call per MiB (a group
// commit) and fsyncs per the [SyncPolicy]:
//
//   - A process crash (kill -9, panic, OOM kill): everything Append returned
//     for survives under both policies, because the data is in the operating
//     system's page cache, which outlives the process. A batch being written
//     when the process died may be partly stored: its complete records are
//     kept and delivered, a torn last record is truncated on Open.
//   - Power loss or a kernel crash: with [SyncEvery] everything Append
//     returned for survives (it was fsynced before Append returned); with
//     [SyncInterval] what was appended in the last Interval (100 ms by
//     default) may be lost. Segments are fsynced whenever they are sealed,
//     and the directory when files are created.
//   - Acknowledgements are written to the cursor file on every Ack and
//     fsynced with the data (every Append under SyncEvery, every Interval
//     under SyncInterval) and on Close. Losing the latest acknowledgements
//     (power loss) replays those samples again: duplicates, never a gap.
//     The Bridge's per-source Seq lets a consumer drop them. Within a
//     process and across crashes that do not lose the page cache there are
//     no duplicates from the spool itself.
//   - Damage: see below.
//   - A write that fails (ENOSPC from a full disk, EFBIG from a file size
//     limit, EIO) is cut off again so the log stays valid and no partial
//     record is ever read back. Append returns a [*PartialError] naming the
//     spool directory, the file and the operating system's error (wrapped:
//     errors.Is(err, syscall.ENOSPC) works) and saying how many samples of
//     the batch were stored (Stored, also as StoredSamples(), possibly 0);
//     those are kept and delivered in order. The first failure of a run is
//     logged once; a later Append that succeeds (space is back) logs that
//     writes work again. A failed fsync makes every later Append fail (the
//     kernel may have dropped the dirty pages, so the spool can no longer
//     promise what it holds), until the spool is reopened.
//
// # Damage
//
// A damaged spool opens, keeps every undamaged sample in order, counts every
// sample lost in [Spool.Lost] (which Dropped includes) and logs each damage
// once per Open with the file's name. What is done with each kind:
//
//   - A record that fails its CRC or does not decode (a flipped bit, a bad
//     sector, a zero-filled range): skipped; reading goes on at the next
//     valid record. Open finds damage in the segments it reads (the
//     cursor's, the last, any without a valid seal); damage inside a
//     validly sealed segment is found and counted when replay reaches it
//     (until then Len includes it).
//   - A missing segment (a gap in the segment numbers after the cursor's),
//     a segment truncated to less than its header, or one zero-filled
//     whole: its samples are counted as lost; an empty or truncated file is
//     removed, a zero-filled one is read (nothing in it is valid) and
//     deleted when replay passes it.
//   - A segment cut short inside a record, not the last: its complete
//     records are kept, the rest counted. (At the end of the last segment
//     an incomplete record is a torn write of a crash: truncated, logged,
//     not counted, since its Append never returned.)
//   - A damaged segment header magic: logged, the records read anyway
//     (each has its own CRC).
//   - A segment header with a format version this package does not read:
//     the segment is quarantined: renamed to <name>.seg.quarantined, kept
//     for a version that reads it (rename it back), and its samples counted
//     as lost. Refusing to start would stop every other sample; reading it
//     as the current format could deliver wrong values. Renaming fails
//     only when the directory is not writable, and then Open fails.
//   - A damaged cursor: replay starts at the oldest segment (duplicates,
//     not loss), logged.
//   - Files that are not part of the spool (anything but segments, the
//     cursor and the dead-letter file [DeadLetterName]), such as a stray
//     "notes.txt" or a lock file another tool left: ignored, logged. The
//     spool's own lock is an flock on the cursor file, which the kernel
//     releases when the process dies, so none is ever left behind.
//
// How the count is exact: every segment's start record holds the record
// number of its first sample, and the cursor the record number at the read
// position. The samples lost between two readable start records (or the
// cursor and the next one) are the difference of the numbers minus the
// samples found in between, however much is missing or damaged there.
// Where no later start record closes the range (damage in the last
// segment, or in its start record), or the files predate record numbers,
// the count is a lower bound: one sample per damaged region, per missing
// segment and per quarantined segment; the log says "at least". A deleted
// last segment cannot be told from one never created (the previous one is
// found sealed with no successor, logged). Damage still on disk is counted
// again by each later Open until replay passes it, and damage skipped
// inside the segment holding the read position may be counted again after
// a restart: the count may exceed the loss across restarts, never fall
// short of it.
//
// # Counters
//
// [Spool.Dropped] counts every sample the spool lost since Open: dropped
// because it was full under [DropOldest], and lost to damage.
// [Spool.Lost] counts the damage part alone. [Spool.Len] is what is held.
// A failed Append reports how many samples of its batch were stored in its
// [*PartialError]. [DeadLetter.Written] and [DeadLetter.Refused] count the
// dead-letter file's samples.
//
// # Dead letters
//
// [OpenDeadLetter] opens an append-only JSON-lines file, by default
// [DeadLetterPath] (deadletter.jsonl in the spool directory, which Open
// leaves alone), for the samples a sink rejected for good: each line is the
// bridge's JSON encoding of one sample plus "reason" and "dead_at". Put
// fsyncs before it returns and stores a batch whole or not at all. The file
// is bounded by [DeadLetterOptions.MaxBytes] (default 64 MiB): a Put that
// would pass it is refused with [ErrDeadLetterFull], counted and logged
// once; it never grows without bound and nothing in it is ever deleted by
// this package. A last line torn by a crash is cut off on open.
//
// # Settings
//
// [Options] and [DeadLetterOptions] carry the YAML keys of the gateway's
// configuration and a Validate method returning [*bridge.FieldError] values
// with those keys as paths; [Open] and [OpenDeadLetter] enforce the same.
// Zero means the default; otherwise:
//
//	key            default       range
//	max_bytes      1GiB          16KiB .. 16TiB
//	segment_bytes  16MiB         4KiB .. 1GiB, and at most max_bytes (lowered to max_bytes/4)
//	full           drop_oldest   drop_oldest | block
//	sync           every         every | interval
//	sync_interval  100ms         1ms .. 1m, only with sync: interval
//	dead letter max_bytes  64MiB  4KiB .. 1TiB
//
// Sizes are [ByteSize] values in files ("1GiB", "512MB", "64k"); the
// policies implement encoding.TextUnmarshaler.
//
// # Sequence numbers
//
// The spool stores Sample.Seq exactly and never assigns it. A source that
// numbers its samples from [Spool.SeqStart] (at least the current time in
// Unix nanoseconds, and above every Seq the spool has recorded) keeps its
// sequence growing across restarts, even when the clock stepped back, as
// long as it produces fewer than one sample per nanosecond.
//
// # Why not a library
//
// github.com/tidwall/wal (v1.1.7) and go.etcd.io/bbolt were considered.
// tidwall/wal reads each segment it touches whole into memory with a position
// per entry (two cached 20 MB segments by default: more than the few MB we
// allow), its entries carry no checksum, a damaged entry makes the whole
// log fail with ErrCorrupt instead of being skipped, and it has no byte bound
// with a drop-oldest or blocking policy. bbolt is a B+tree with copy-on-write
// pages whose file does not shrink after deletes, and each commit rewrites
// pages and its meta page: several times the bytes of an append-only log. The log here is a few hundred lines and does
// exactly what the contract needs.
package spool
