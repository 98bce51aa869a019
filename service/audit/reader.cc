#include "service/audit/reader.h"

#include <vector>

#include "absl/strings/str_cat.h"
#include "engine/status_macros.h"
#include "service/audit/format.h"
#include "service/audit/json.h"

namespace stepwise::service::audit {

absl::Status ForEachRecord(
    FileSystem& fs, const std::string& dir,
    const std::function<absl::Status(const RecordRef&)>& fn) {
  STEPWISE_ASSIGN_OR_RETURN(const std::vector<Segment> segments,
                            ListSegments(fs, dir));
  for (const Segment& segment : segments) {
    STEPWISE_ASSIGN_OR_RETURN(const std::string contents,
                              fs.ReadFile(JoinPath(dir, segment.name)));
    for (const SegmentLine& line : SplitSegmentLines(contents)) {
      if (!line.terminated) break;
      STEPWISE_RETURN_IF_ERROR(fn({segment.name, line.number, line.text}));
    }
  }
  return absl::OkStatus();
}

std::string VerifyResult::FirstBreakText() const {
  if (!first_break) return "";
  return absl::StrCat(first_break->file, ":", first_break->line, ": seq ",
                      first_break->seq, ": ", first_break->reason);
}

absl::StatusOr<VerifyResult> Verify(FileSystem& fs, const std::string& dir,
                                    const VerifyOptions& options) {
  STEPWISE_ASSIGN_OR_RETURN(const std::vector<Segment> segments,
                            ListSegments(fs, dir));
  ChainChecker chain;
  VerifyResult result;
  std::string last_file = segments.empty() ? "" : segments.back().name;
  uint64_t last_line = 0;
  for (const Segment& segment : segments) {
    STEPWISE_ASSIGN_OR_RETURN(const std::string contents,
                              fs.ReadFile(JoinPath(dir, segment.name)));
    last_file = segment.name;
    last_line = 0;
    for (const SegmentLine& line : SplitSegmentLines(contents)) {
      if (std::optional<ChainChecker::Break> broken = chain.Next(line)) {
        result.first_break = ChainBreak{segment.name, line.number, broken->seq,
                                        std::move(broken->reason)};
        break;
      }
      last_line = line.number;
      ++result.records_checked;
      if (options.through_seq != 0 && chain.last_seq() == options.through_seq) {
        break;
      }
    }
    if (result.first_break ||
        (options.through_seq != 0 && chain.last_seq() == options.through_seq)) {
      break;
    }
  }
  if (!result.first_break && options.through_seq > chain.last_seq()) {
    result.first_break =
        ChainBreak{last_file, last_line + 1, chain.last_seq() + 1,
                   absl::StrCat("the log ends at seq ", chain.last_seq(),
                                ", before seq ", options.through_seq)};
  }
  result.head_hash = chain.last_hash();
  return result;
}

absl::StatusOr<FoundRecord> FindDecision(FileSystem& fs, const std::string& dir,
                                         absl::string_view decision_id) {
  STEPWISE_ASSIGN_OR_RETURN(const std::vector<Segment> segments,
                            ListSegments(fs, dir));
  // Any spelling of the id in a record contains it as this literal, except
  // with needless \u escapes, which this writer never produces.
  const std::string needle = JsonQuote(decision_id);
  for (auto it = segments.rbegin(); it != segments.rend(); ++it) {
    STEPWISE_ASSIGN_OR_RETURN(const std::string contents,
                              fs.ReadFile(JoinPath(dir, it->name)));
    for (const SegmentLine& line : SplitSegmentLines(contents)) {
      if (!line.terminated ||
          line.text.find(needle) == absl::string_view::npos) {
        continue;
      }
      absl::StatusOr<ParsedRecord> record = ParseRecord(line.text);
      if (!record.ok()) {
        return absl::DataLossError(absl::StrCat(
            it->name, ":", line.number, ": ", record.status().message()));
      }
      if (record->kind == kKindDecision && record->decision_id == decision_id) {
        return FoundRecord{it->name, line.number, *std::move(record)};
      }
    }
  }
  return absl::NotFoundError(absl::StrCat(
      "no decision record with decision_id ", needle, " in ", dir));
}

}  // namespace stepwise::service::audit
