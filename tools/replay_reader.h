// Reading an audit log for `stepwise replay`: each record line becomes what
// engine::ReplayAccumulator needs, and a whole log folder is replayed across
// worker threads (docs/replay.md).
//
// A line is read by a small, strict reader that knows exactly the shape the
// audit log writes (docs/audit-log.md §2-3) and takes out only what replay
// uses; anything it does not recognise (whitespace, escapes it does not
// handle, numbers written as strings, unknown request fields, ...) sends the
// line to the exact parser, service::audit::ParseRecord, which is correct for
// every line but several times slower. So the reader is never wrong, only
// slower on unusual lines.
//
// Thread-safety: the free functions are safe from any thread; ReplayAuditLog
// starts its own workers and returns when they are done.
#ifndef STEPWISE_TOOLS_REPLAY_READER_H_
#define STEPWISE_TOOLS_REPLAY_READER_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "engine/bundle.h"
#include "engine/replay.h"
#include "service/audit/file_system.h"

namespace stepwise::tools {

// The fast reader's state kept from line to line (replay_reader.cc).
class FastReaderScratch;

// One record line as replay sees it. A decision's request gets the record's
// keyed subject hash as its subject_id (see engine::RecordedDecision).
// Reuse one ReplayLine for many lines: the fast reader then fills the same
// request in place, keeping its assessments, item maps and strings.
struct ReplayLine {
  ReplayLine();
  ~ReplayLine();
  // A copy holds its own copy of the request; the scratch is not copied.
  ReplayLine(const ReplayLine& other);
  ReplayLine& operator=(const ReplayLine& other);
  ReplayLine(ReplayLine&&) noexcept;
  ReplayLine& operator=(ReplayLine&&) noexcept;

  enum class Kind { kDecision, kActivation, kShadow, kOther };
  Kind kind = Kind::kOther;
  // Filled for decisions only. After a fast read its request() is a view
  // of the request in `scratch`.
  engine::RecordedDecision decision;
  // Made by the first fast read.
  std::unique_ptr<FastReaderScratch> scratch;
};

// The fast reader. True when it recognised the line and filled `*out`; false
// when the line must go to ReadReplayLineExact (nothing is wrong with the
// line for that reason alone). It checks the line's shape and JSON syntax,
// and the types of everything it takes out, but not the record's hash; of
// records other than decisions it reads only seq and kind.
bool ReadReplayLineFast(absl::string_view line, ReplayLine* out);

// The exact reader, through service::audit::ParseRecord (which also checks
// the record's own hash). DATA_LOSS when the line is not a record.
absl::Status ReadReplayLineExact(absl::string_view line, ReplayLine* out);

// The fast reader, else the exact one (`*used_exact` says which). A decision
// record whose request has no as_of is DATA_LOSS: replay could not derive
// the facts the decision was made on.
absl::Status ReadReplayLine(absl::string_view line, ReplayLine* out,
                            bool* used_exact);

struct ReplayLogOptions {
  // Worker threads, >= 1. Default: 1.
  int threads = 1;
  // Bytes of a segment handed to a worker at a time (cut at a line end).
  // Default: 256 KiB.
  size_t chunk_bytes = 256 << 10;
  engine::ReplayLimits limits;
  // Called from the calling thread at most once per progress_interval while
  // the replay runs, and once at the end: bytes read of bytes_total, and
  // records replayed so far. Default: none.
  std::function<void(uint64_t bytes_done, uint64_t bytes_total,
                     uint64_t records)>
      progress;
  absl::Duration progress_interval = absl::Milliseconds(100);
};

// Replays every complete record of every segment of the log folder `dir`
// (a last line without its line feed, still being written, is left out)
// under `candidate`. The chain is not verified. Fills the report's run
// fields (threads, seconds, records/s, exact_parser_records). A decision
// line that cannot be read at all is DATA_LOSS naming "FILE:LINE"; an
// unreadable folder is the file system's error.
absl::StatusOr<engine::ReplayReport> ReplayAuditLog(
    service::audit::FileSystem& fs, const std::string& dir,
    const engine::Bundle& candidate, const ReplayLogOptions& options = {});

}  // namespace stepwise::tools

#endif  // STEPWISE_TOOLS_REPLAY_READER_H_
