// CSV, TSV and whitespace-separated text. The separator is chosen once per file from its first
// non-comment line, or under a header from the first data row (the header is split as the rows
// are: a name may hold a ';'): a tab if the file is named *.tsv or *.tab and the line has one,
// else ';' if it has one, else ',' if it has one, else runs of spaces and tabs.
// A first line none of whose cells is a number (or a missing-value marker such as NA) is a
// header; blank lines and lines whose first non-blank character is '#' are skipped.
#include <algorithm>
#include <cctype>
#include <charconv>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <string>
#include <string_view>
#include <system_error>
#include <type_traits>
#include <vector>

#include "core/c_numbers.hpp"
#include "core/validate.hpp"
#include "emix/errors.hpp"
#include "io/common.hpp"

namespace emix::io::detail {
namespace {

// Longest line read (a row of 2^20 columns of 17-digit numbers is about 20 MiB): a file with no
// newline at all (/dev/zero) must end in an error, not in all of memory.
constexpr std::size_t kMaxLineBytes = std::size_t{1} << 28;

// Yields the file's lines (without "\n", "\r\n" or a lone "\r", the line end of classic Mac
// OS and some spreadsheet exports, which pandas and NumPy read too) from large buffered reads.
class LineReader {
 public:
  // A small file gets a buffer of its own size rather than 4 MiB (a pipe or device reports 0).
  explicit LineReader(InputFile& file)
      : file_(file),
        buffer_(file.size() > 0 && file.size() < (std::uint64_t{1} << 22)
                    ? static_cast<std::size_t>(file.size()) + 1
                    : std::size_t{1} << 22) {}

  bool next(std::string_view* line) {
    while (true) {
      const char* begin = buffer_.data() + begin_;
      const std::size_t available = end_ - begin_;
      if (newline_at_ == kUnknown || newline_at_ < begin_) {
        const auto* found = static_cast<const char*>(std::memchr(begin, '\n', available));
        newline_at_ = found != nullptr ? static_cast<std::size_t>(found - buffer_.data()) : end_;
      }
      const char* newline = newline_at_ < end_ ? buffer_.data() + newline_at_ : nullptr;
      // A carriage return before the newline (or the buffer's end) that no newline follows ends
      // a line of its own; one last in the buffer may be a "\r\n" the next read completes.
      const std::size_t before_newline =
          newline != nullptr ? static_cast<std::size_t>(newline - begin) : available;
      const auto* lone = static_cast<const char*>(std::memchr(begin, '\r', before_newline));
      if (lone != nullptr && lone + 1 != newline && (lone + 1 < begin + available || eof_)) {
        const std::size_t length = static_cast<std::size_t>(lone - begin);
        begin_ += length + 1;
        return emit(begin, length, line);
      }
      if (newline != nullptr) {
        std::size_t length = static_cast<std::size_t>(newline - begin);
        begin_ += length + 1;
        return emit(begin, length, line);
      }
      if (eof_) {
        if (begin_ == end_) return false;
        const std::size_t length = end_ - begin_;
        begin_ = end_;
        return emit(begin, length, line);
      }
      refill();
    }
  }

  std::int64_t line_number() const { return line_number_; }

 private:
  bool emit(const char* begin, std::size_t length, std::string_view* line) {
    if (length > 0 && begin[length - 1] == '\r') --length;
    ++line_number_;
    if (line_number_ == 1 && length >= 3 && std::memcmp(begin, "\xEF\xBB\xBF", 3) == 0) {
      begin += 3;  // a UTF-8 byte-order mark, as spreadsheet programs write
      length -= 3;
    }
    *line = std::string_view(begin, length);
    return true;
  }

  void refill() {
    // Keep the partial line, moved to the front; grow only for a line longer than the buffer.
    const std::size_t kept = end_ - begin_;
    std::memmove(buffer_.data(), buffer_.data() + begin_, kept);
    newline_at_ = kUnknown;
    begin_ = 0;
    end_ = kept;
    if (end_ == buffer_.size()) {
      if (buffer_.size() >= kMaxLineBytes) {
        throw_io(file_.path(), "line " + std::to_string(line_number_ + 1) + " is longer than " +
                                   std::to_string(kMaxLineBytes >> 20) + " MiB");
      }
      buffer_.resize(buffer_.size() * 2);
    }
    const std::size_t got = file_.read_some(buffer_.data() + end_, buffer_.size() - end_);
    end_ += got;
    if (got == 0) eof_ = true;
  }

  InputFile& file_;
  std::vector<char> buffer_;
  std::size_t begin_ = 0;
  std::size_t end_ = 0;
  // Where the next "\n" at or after begin_ is (an offset in buffer_), or end_ where none is
  // before end_: found again only once begin_ passes it or a read moves the data, so that a file
  // of lone carriage returns, without a "\n", is not searched to its end for every line.
  static constexpr std::size_t kUnknown = std::numeric_limits<std::size_t>::max();
  std::size_t newline_at_ = kUnknown;
  bool eof_ = false;
  std::int64_t line_number_ = 0;
};

bool is_blank(char c) { return c == ' ' || c == '\t'; }

std::string_view trim(std::string_view s) {
  while (!s.empty() && is_blank(s.front())) s.remove_prefix(1);
  while (!s.empty() && is_blank(s.back())) s.remove_suffix(1);
  return s;
}

// ';' if the line has one outside double quotes, else ',' if it has one, else 0: runs of
// blanks. In a file named *.tsv or *.tab (`tab_separated`), a tab if the line has one: TSV as
// spreadsheets, pandas and R write it, one tab between cells and two around an empty one, names
// that may hold spaces. Read as runs of blanks, a TSV file's empty cell shifted the row's next
// values one column left; other names keep runs of blanks, which columns aligned with tabs use.
char choose_separator(std::string_view line, bool tab_separated) {
  bool quoted = false, semicolon = false, comma = false, tab = false;
  for (const char c : line) {
    if (c == '"') quoted = !quoted;
    if (quoted) continue;
    semicolon = semicolon || c == ';';
    comma = comma || c == ',';
    tab = tab || c == '\t';
  }
  if (tab_separated && tab) return '\t';
  return semicolon ? ';' : comma ? ',' : '\0';
}

bool tab_separated_name(const std::string& path) {
  const std::string extension = lower_extension(path);
  return extension == ".tsv" || extension == ".tab";
}

// A cell in double quotes (RFC 4180, as R's write.csv writes names and row names): its content,
// between the quotes (a doubled quote inside stays doubled: no number holds one). A quote that
// does not close takes the rest of the line into its cell, which then misses its columns.
std::string_view unquote(std::string_view cell) {
  if (cell.size() >= 2 && cell.front() == '"' && cell.back() == '"') {
    return cell.substr(1, cell.size() - 2);
  }
  return cell;
}

// A line with double quotes, split by a separator outside them; cells keep their quotes where
// keep_quotes (a first line, whose quoted cells are names).
void split_quoted(std::string_view line, char separator, std::vector<std::string_view>* cells,
                  bool keep_quotes) {
  std::size_t start = 0;
  bool quoted = false;
  for (std::size_t i = 0; i <= line.size(); ++i) {
    if (i < line.size() && line[i] == '"') quoted = !quoted;
    const bool end = i == line.size() ||
                     (!quoted && (separator == 0 ? is_blank(line[i]) : line[i] == separator));
    if (!end) continue;
    const std::string_view cell = trim(line.substr(start, i - start));
    if (separator != 0 || !cell.empty()) cells->push_back(keep_quotes ? cell : unquote(cell));
    start = i + 1;
  }
}

// separator 0: runs of blanks.
void split(std::string_view line, char separator, std::vector<std::string_view>* cells,
           bool keep_quotes = false) {
  cells->clear();
  if (line.find('"') != std::string_view::npos) {
    split_quoted(line, separator, cells, keep_quotes);
    return;
  }
  if (separator == 0) {
    std::size_t i = 0;
    const std::size_t n = line.size();
    while (true) {
      while (i < n && is_blank(line[i])) ++i;
      if (i == n) return;
      const std::size_t start = i;
      while (i < n && !is_blank(line[i])) ++i;
      cells->push_back(line.substr(start, i - start));
    }
  }
  std::size_t start = 0;
  while (true) {
    const std::size_t end = line.find(separator, start);
    if (end == std::string_view::npos) {
      cells->push_back(trim(line.substr(start)));
      return;
    }
    cells->push_back(trim(line.substr(start, end - start)));
    start = end + 1;
  }
}

// Widest row read, the same bound the fit puts on the number of features.
constexpr std::int64_t kMaxTextColumns = std::int64_t{1} << 20;

enum class Parse { kOk, kNotNumber, kOutOfRange };

Parse parse_number(std::string_view cell, double* value) {
  const char* first = cell.data();
  const char* last = first + cell.size();
  if (first != last && *first == '+' && last - first > 1 && first[1] != '-') ++first;
  if (first == last) return Parse::kNotNumber;
  const auto result = std::from_chars(first, last, *value);
  if (result.ptr != last) return Parse::kNotNumber;
  if (result.ec == std::errc::result_out_of_range) {
    // from_chars leaves the value unset; strtod gives +-HUGE_VAL (inf) or the nearest tiny value.
    const std::string copy(first, last);
    const CNumbers c_numbers;
    *value = std::strtod(copy.c_str(), nullptr);
    return std::isfinite(*value) ? Parse::kOk : Parse::kOutOfRange;
  }
  if (result.ec != std::errc()) return Parse::kNotNumber;
  return Parse::kOk;
}

// Cells that stand for a missing value in the files of R, pandas and spreadsheets. A first row
// holding one is data with a hole, not a header.
bool is_missing_marker(std::string_view cell) {
  static constexpr std::string_view kMarkers[] = {"na",      "n/a", "nan", "null", "none",
                                                  "missing", "?",   "-",   "."};
  for (std::string_view marker : kMarkers) {
    if (cell.size() != marker.size()) continue;
    bool same = true;
    for (std::size_t i = 0; i < cell.size() && same; ++i) {
      same = std::tolower(static_cast<unsigned char>(cell[i])) == marker[i];
    }
    if (same) return true;
  }
  return false;
}

// A header names its columns: no cell of it is a number or a missing-value marker. One numeric
// cell ("NA,1,2", "id,3") makes the line a data row, so that its other cells are reported as
// errors instead of the row being silently dropped. Cells come with their quotes: a quoted cell
// is a name ("1","2" is R's header of columns named 1 and 2).
bool is_header(const std::vector<std::string_view>& cells) {
  bool any_text = false;
  for (std::string_view cell : cells) {
    if (cell.empty()) continue;
    double value;
    if (parse_number(cell, &value) != Parse::kNotNumber || is_missing_marker(cell)) return false;
    any_text = true;
  }
  return any_text;
}

// Whether column 1 of the rows read holds whole numbers >= 0 only, on two rows or more (one
// leaves it a guess): what an index is, pandas' (0, 1, 2, ..., or any subset after filtering,
// in any order after sorting) or R's row names (1, 2, 3, ...).
template <typename T>
bool holds_whole_numbers(const std::vector<T>& values, std::int64_t cols) {
  const std::int64_t rows = static_cast<std::int64_t>(values.size()) / cols;
  for (std::int64_t r = 0; r < rows; ++r) {
    const T v = values[static_cast<std::size_t>(r * cols)];
    if (!(v >= 0 && std::floor(v) == v)) return false;
  }
  return rows >= 2;
}

// The name of a column a header leaves unnamed: none, or the one pandas gives it when it reads
// such a file ("Unnamed: 0"), which its to_csv(index=False) then writes.
bool is_index_name(std::string_view name) { return name.empty() || name == "Unnamed: 0"; }

// What the header on `line` says of column 1 when is_index_name.
std::string first_column_unnamed(std::string_view name, std::int64_t line) {
  const std::string header = "in the header (line " + std::to_string(line) + ")";
  if (name.empty()) return "column 1 has no name " + header;
  return "column 1 is named '" + std::string(name) + "' " + header +
         ", pandas' name for a column without one (an index written to the file, read back and "
         "written again)";
}

// How a first column is told to go that is_index_name calls an index (`name`: its name).
std::string leave_the_index_out(std::string_view name) {
  // to_csv(index=False) wrote "Unnamed: 0" itself: the index was read back as a column first.
  if (!name.empty()) {
    return "read the file with pandas' read_csv(..., index_col=0), or drop the column "
           "(df.drop(columns='" +
           std::string(name) + "')), before to_csv(..., index=False)";
  }
  return "pandas' to_csv and R's write.csv write one by default; write the file without it "
         "(to_csv(..., index=False), write.csv(..., row.names = FALSE)), or name the column";
}

// pandas' header of a frame with its default column names and its index: ",0,1,...,D-2" (an
// empty name, then the numbers 0, 1, ...). is_header takes numbers for data; this one is names.
bool is_numbered_header(const std::vector<std::string_view>& cells) {
  if (cells.size() < 2 || !cells[0].empty()) return false;
  for (std::size_t i = 1; i < cells.size(); ++i) {
    if (cells[i] != std::to_string(i - 1)) return false;
  }
  return true;
}

// pandas' header of a frame with its default column names, written without its index:
// "0,1,...,D-1". Its names are numbers, as a data row's could be, so the next line decides
// (written_as_reals). Not a lone "0": one column whose first value is written "0" over reals
// (zero-inflated data, R's write) is far likelier than pandas' name, and a row lost unnoticed
// (with --quiet nothing is said) is worse than one read too many.
bool is_numbered_names(const std::vector<std::string_view>& cells) {
  if (cells.size() < 2) return false;
  for (std::size_t i = 0; i < cells.size(); ++i) {
    if (cells[i] != std::to_string(i)) return false;
  }
  return true;
}

// Years as names: three or more whole numbers one apart, of four digits ("2019,2020,2021"). Over
// counts per year as well as over reals a header (the commands tell the guess): such a first row
// of data is far less likely; alone, a row. Other runs ("1,2,3" over "4.5,5,6") are a row.
bool is_year_names(const std::vector<std::string_view>& cells) {
  if (cells.size() < 3) return false;
  int first = 0;
  const auto [end, error] =
      std::from_chars(cells[0].data(), cells[0].data() + cells[0].size(), first);
  if (error != std::errc() || end != cells[0].data() + cells[0].size() || first < 1000 ||
      first + static_cast<std::int64_t>(cells.size()) - 1 > 9999) {
    return false;
  }
  for (std::size_t i = 1; i < cells.size(); ++i) {
    if (cells[i] != std::to_string(first + static_cast<int>(i))) return false;
  }
  return true;
}

// Every cell in double quotes and a number inside them: a header of numbered names ("1","2", as
// R writes them) or, where every line quotes every cell (Python's csv.QUOTE_ALL), a row.
bool is_quoted_numbers(const std::vector<std::string_view>& cells) {
  for (std::string_view cell : cells) {
    double value;
    if (cell.size() < 3 || cell.front() != '"' || cell.back() != '"' ||
        parse_number(unquote(cell), &value) != Parse::kOk) {
      return false;
    }
  }
  return !cells.empty();
}

// Whether a line quotes every cell.
bool quotes_every_cell(std::string_view line, char separator) {
  std::vector<std::string_view> cells;
  split(line, separator, &cells, /*keep_quotes=*/true);
  for (std::string_view cell : cells) {
    if (cell.size() < 2 || cell.front() != '"' || cell.back() != '"') return false;
  }
  return !cells.empty();
}

// Whether a line has a number written as a real ("1.5", "2.0", "3e-4"): real-valued data, under
// which a first line of the whole numbers 0, 1, ... is pandas' names, not a row. A line of whole
// numbers (counts) leaves that first line a row.
bool written_as_reals(std::string_view line, char separator) {
  std::vector<std::string_view> cells;
  split(line, separator, &cells);
  for (std::string_view cell : cells) {
    double value;
    if (cell.find_first_of(".eE") != std::string_view::npos &&
        parse_number(cell, &value) == Parse::kOk) {
      return true;
    }
  }
  return false;
}

// What a cell that is not a number may be, where neither a missing value nor a comment explains
// it: a number with a comma inside (a decimal comma, as European spreadsheets export, or a
// thousands separator), or text (names, IDs, categories).
std::string not_a_number_hint(std::string_view cell) {
  const bool number_like = !cell.empty() && cell.find(',') != std::string_view::npos &&
                           cell.find_first_not_of("0123456789,.+-") == std::string_view::npos &&
                           cell.find_first_of("0123456789") != std::string_view::npos;
  if (number_like) {
    return "; a decimal comma or a thousands separator? emix reads numbers written as 1234.5: "
           "write them so (pandas reads these with read_csv's decimal=',' or thousands=',', and "
           "its to_csv writes them so)";
  }
  // Text begins with a letter ("s0", "Paris"); "1e" and "0x1A" are numbers written wrong.
  if (!cell.empty() && std::isalpha(static_cast<unsigned char>(cell.front())) != 0) {
    return "; emix reads numbers only: drop a column of text (names, IDs, categories) or encode "
           "it as numbers first";
  }
  return {};
}

// What a '#' after values on a line means to emix, for the message about that line: NumPy's
// loadtxt takes the rest of the line as a comment, emix reads comments only on lines of their own.
std::string comment_hint(std::string_view text) {
  if (text.find('#') == std::string_view::npos) return {};
  return "; '#' starts a comment only at the start of a line (emix reads no comment after values "
         "on the same line): move the comment to a line of its own";
}

// Blank lines and comments ('#' first) hold no row.
bool holds_nothing(std::string_view line) {
  std::size_t start = 0;
  while (start < line.size() && is_blank(line[start])) ++start;
  return start == line.size() || line[start] == '#';
}

// What a file's first line is, from its cells with their quotes. Every reader of a text file's
// rows asks this, so that they count rows alike. The kinds between kHeader and kRow are held
// until the next line tells which (held_line_is_header).
enum class FirstLine {
  kHeader,
  kYearNames,      // 2019, 2020, 2021, quoted or not: a header over any row, alone a row
  kNumberedNames,  // pandas' 0, 1, ...: a header over rows written as reals, else a row
  kQuotedNames,    // the same in quotes: a header over rows written as reals or not quoted
  kQuotedNumbers,  // "1","2": a row over rows that quote every cell (QUOTE_ALL), else a header
  kRow,
};
FirstLine classify_first_line(const std::vector<std::string_view>& cells) {
  if (is_quoted_numbers(cells)) {
    std::vector<std::string_view> bare(cells.size());
    std::transform(cells.begin(), cells.end(), bare.begin(), unquote);
    if (is_year_names(bare)) return FirstLine::kYearNames;
    return is_numbered_names(bare) ? FirstLine::kQuotedNames : FirstLine::kQuotedNumbers;
  }
  if (is_header(cells) || is_numbered_header(cells)) return FirstLine::kHeader;
  if (is_year_names(cells)) return FirstLine::kYearNames;
  return is_numbered_names(cells) ? FirstLine::kNumberedNames : FirstLine::kRow;
}

// Whether a held first line (of a kind between kHeader and kRow) is a header, by the line after.
bool held_line_is_header(FirstLine kind, std::string_view next, char separator) {
  switch (kind) {
    case FirstLine::kYearNames:
      return true;
    case FirstLine::kQuotedNumbers:
      return !quotes_every_cell(next, separator);
    case FirstLine::kQuotedNames:
      return !quotes_every_cell(next, separator) || written_as_reals(next, separator);
    default:
      return written_as_reals(next, separator);
  }
}

// How the readers take a text file's first line: a header or a row (for the kinds held, as the
// line after it says), and the separator its cells are split by (under a header, the first
// row's, as read_text_as splits a header again).
struct FirstLineReading {
  std::string text;  // the line; empty for a file without one
  std::int64_t line = 0;
  FirstLine kind = FirstLine::kRow;
  char separator = 0;
  bool header = false;
  bool row_follows = false;  // another line of data follows it
};

FirstLineReading read_first_line(const std::string& path) {
  InputFile file(path);
  LineReader lines(file);
  std::vector<std::string_view> cells;
  std::string_view line;
  FirstLineReading out;
  while (lines.next(&line)) {
    if (holds_nothing(line)) continue;
    if (out.line == 0) {
      out.text.assign(line);
      out.line = lines.line_number();
      out.separator = choose_separator(line, tab_separated_name(path));
      split(line, out.separator, &cells, /*keep_quotes=*/true);
      out.kind = classify_first_line(cells);
      out.header = out.kind == FirstLine::kHeader;
      if (out.kind == FirstLine::kRow) return out;
      continue;
    }
    out.row_follows = true;
    if (out.kind != FirstLine::kHeader) {
      out.header = held_line_is_header(out.kind, line, out.separator);
    } else if (const char from_row = choose_separator(line, tab_separated_name(path));
               from_row != '\0') {
      out.separator = from_row;
    }
    return out;
  }
  return out;
}

template <typename T>
HostMatrix read_text_as(InputFile& file, const ReadOptions& options) {
  const std::string& path = file.path();
  const std::int64_t first = options.first_row;
  const std::int64_t last =
      options.row_count < 0 ? std::numeric_limits<std::int64_t>::max() : first + options.row_count;
  const DType dtype = std::is_same_v<T, float> ? DType::kFloat32 : DType::kFloat64;

  LineReader lines(file);
  std::vector<T> values;
  std::vector<std::string_view> cells;
  std::int64_t cols = -1;
  std::int64_t header_cols = -1;
  std::int64_t header_line = 0;
  bool unnamed_first_column = false;  // the header's first cell is empty (is_index_name)
  std::string first_name;             // that cell
  bool named_last_column = false;     // the header names its last column: an empty cell there
                                      // is a missing value, not a trailing separator's column
  // Row 1, which sets the column count, ends with a separator: an empty last column in every row.
  bool rows_end_with_separator = false;
  bool seen_first = false;
  char separator = 0;
  std::int64_t data_row = 0;  // data rows seen so far; the current one's 1-based number
  std::string_view line;
  // A first line that the next one tells to be a header or a row (classify_first_line).
  std::string held;
  FirstLine held_kind = FirstLine::kRow;
  std::int64_t held_line = 0;
  std::int64_t held_cols = 0;
  // A header of names, until the first data row chooses the separator both are split by.
  std::string header;

  // One data row; false once the rows asked for are read.
  const auto read_row = [&](std::string_view text, std::int64_t line_number) {
    ++data_row;
    const bool wanted = data_row > first && data_row <= last;
    if (!wanted && cols >= 0) return data_row <= last;  // skipped rows are counted, not parsed
    split(text, separator, &cells);
    const auto n_cells = static_cast<std::int64_t>(cells.size());
    // Built only for messages: most rows never need it.
    auto at_line = [&] {
      const bool open_quote = std::count(text.begin(), text.end(), '"') % 2 == 1;
      return " (line " + std::to_string(line_number) + ")" +
             (open_quote ? "; a double quote on this line does not close" : "");
    };
    const auto ends_with_separator = [&] {
      return separator != '\0' &&
             text.find_last_not_of(separator == '\t' ? " " : " \t") == text.rfind(separator);
    };
    if (cols < 0) {
      cols = n_cells;
      rows_end_with_separator = ends_with_separator();
      if (cols > kMaxTextColumns) {
        throw_io(path, "row 1 has " + std::to_string(cols) + " columns; emix reads at most " +
                           std::to_string(kMaxTextColumns) + at_line());
      }
      if (header_cols >= 0 && header_cols != cols) {
        throw_io(path, "the header (line " + std::to_string(header_line) + ") has " +
                           std::to_string(header_cols) + " columns but row 1 has " +
                           std::to_string(cols) + at_line());
      }
      if (options.row_count > 0) {
        values.reserve(static_cast<std::size_t>(
            std::min<std::int64_t>(options.row_count, std::int64_t{1} << 24) * cols));
      }
    }
    if (n_cells != cols) {
      throw_io(path, "row " + std::to_string(data_row) + " has " + count_of(n_cells, "column") +
                         ", expected " + std::to_string(cols) + at_line() + comment_hint(text));
    }
    if (!wanted) return data_row <= last;
    for (std::int64_t c = 0; c < cols; ++c) {
      const std::string_view cell = cells[static_cast<std::size_t>(c)];
      double value;
      const Parse status = parse_number(cell, &value);
      auto where = [&] {
        return "row " + std::to_string(data_row) + ", column " + std::to_string(c + 1);
      };
      if (status == Parse::kNotNumber) {
        // R's row names ("a", "b", ...) under a nameless first column.
        const std::string row_names = c == 0 && unnamed_first_column
                                          ? "; " + first_column_unnamed(first_name, header_line) +
                                                ": row names or an index? " +
                                                leave_the_index_out(first_name)
                                          : std::string();
        // What a cell that is no number usually means, when the row names do not explain it.
        std::string why = row_names;
        if (why.empty() && cell.empty() && c + 1 == cols && rows_end_with_separator &&
            !named_last_column && ends_with_separator()) {
          why =
              "; the line ends with a separator, which makes an empty last column: remove the "
              "trailing separators";
        } else if (why.empty() && cell.find('#') != std::string_view::npos) {
          why = comment_hint(cell);
        } else if (why.empty() && (cell.empty() || is_missing_marker(cell))) {
          why = std::string(
              "; a missing value? emix needs every value: drop or impute the rows "
              "that miss one");
        } else if (why.empty()) {
          why = not_a_number_hint(cell);
        }
        if (cell.empty()) throw_io(path, where() + " is empty" + at_line() + why);
        throw_io(path, where() + ": " + excerpt(cell) + " is not a number" + at_line() + why);
      }
      // A number written in the file that no double holds is an error even without
      // require_finite: it would silently become inf.
      if (status == Parse::kOutOfRange) {
        throw InvalidArgument(quote_path(path) + ": " + where() + ": " + excerpt(cell) +
                              " is out of the range of float64" + at_line());
      }
      T out;
      if constexpr (std::is_same_v<T, float>) {
        out = narrow_to_float(value);
      } else {
        out = value;
      }
      if (!std::isfinite(out) && (options.require_finite || std::isfinite(value))) {
        throw_not_finite(path, data_row, c + 1, value, dtype, at_line());
      }
      values.push_back(out);
    }
    return true;
  };

  while (lines.next(&line)) {
    if (holds_nothing(line)) continue;
    if (!seen_first) {
      seen_first = true;
      // A pipe or FIFO is not sniffed (that would consume it): a .npy through one is told by
      // its first bytes here, rather than read as a text header.
      if (starts_with_npy_magic(line)) {
        throw_io(path,
                 "a .npy file, read as text: emix reads a .npy only from a regular file, not "
                 "through a pipe or a FIFO; write it to a regular file named *.npy");
      }
      if (const std::string_view start = trim(line); !start.empty() && start.front() == '{') {
        throw_io(path,
                 "a JSON file (a model file?), read as data: emix reads rows of numbers (.csv, "
                 ".tsv, .txt, .npy); a model file goes where a command takes MODEL (emix predict "
                 "MODEL.json INPUT)");
      }
      separator = choose_separator(line, tab_separated_name(path));
      split(line, separator, &cells, /*keep_quotes=*/true);
      const FirstLine kind = classify_first_line(cells);
      if (kind == FirstLine::kHeader) {
        header.assign(line);
        header_cols = static_cast<std::int64_t>(cells.size());
        header_line = lines.line_number();
        unnamed_first_column = cells.size() > 1 && is_index_name(unquote(cells[0]));
        first_name.assign(unquote(cells[0]));
        named_last_column = !cells.empty() && !unquote(cells.back()).empty();
        continue;
      }
      if (kind != FirstLine::kRow) {
        held.assign(line);
        held_kind = kind;
        held_line = lines.line_number();
        held_cols = static_cast<std::int64_t>(cells.size());
        continue;
      }
    } else if (!header.empty()) {
      // "height (cm),weight; kg" over "1,2": ';' from the header split every row into one cell.
      // A row without ';' or ',' (whitespace, or a quote that does not close) keeps the header's.
      const char from_row = choose_separator(line, tab_separated_name(path));
      if (from_row != '\0' && from_row != separator) {
        separator = from_row;
        split(header, separator, &cells, /*keep_quotes=*/true);
        header_cols = static_cast<std::int64_t>(cells.size());
        unnamed_first_column = cells.size() > 1 && is_index_name(unquote(cells[0]));
        first_name.assign(unquote(cells[0]));
        named_last_column = !cells.empty() && !unquote(cells.back()).empty();
      }
      header.clear();
    } else if (held_line > 0) {
      if (held_line_is_header(held_kind, line, separator)) {
        header_cols = held_cols;
        header_line = held_line;
        named_last_column = true;  // numbers name every column
      } else if (!read_row(held, held_line)) {
        break;
      }
      held_line = 0;
    }
    if (!read_row(line, lines.line_number())) break;
  }
  if (held_line > 0) read_row(held, held_line);  // the file's only line

  if (cols < 0) throw_io(path, "contains no data rows");
  // data_row is the number of data rows, or more than `last` when reading stopped early.
  resolve_rows(path, options, data_row);
  const std::int64_t rows =
      static_cast<std::int64_t>(values.size()) / std::max<std::int64_t>(cols, 1);
  if (unnamed_first_column && holds_whole_numbers(values, cols)) {
    throw_io(path, first_column_unnamed(first_name, header_line) +
                       " and holds whole numbers only (" + number(values[0]) + ", " +
                       number(values[static_cast<std::size_t>(cols)]) +
                       ", ...): an index or row names, not a feature. " +
                       leave_the_index_out(first_name));
  }
  HostMatrix out(dtype, rows, cols);
  if (!values.empty()) std::memcpy(out.data(), values.data(), values.size() * sizeof(T));
  return out;
}

}  // namespace

HostMatrix read_text(const std::string& path, const ReadOptions& options) {
  check_row_options(path, options);
  InputFile file(path);
  if (options.dtype == DType::kFloat32) return read_text_as<float>(file, options);
  return read_text_as<double>(file, options);
}

std::int64_t text_line_of_data_row(const std::string& path, std::int64_t row) {
  if (row < 1) return 0;
  const FirstLineReading first = read_first_line(path);
  InputFile file(path);
  LineReader lines(file);
  std::int64_t data_row = 0;
  std::string_view line;
  while (lines.next(&line)) {
    if (holds_nothing(line) || (first.header && lines.line_number() == first.line)) continue;
    if (++data_row == row) return lines.line_number();
  }
  return 0;
}

TextFirstLine text_first_line(const std::string& path) {
  const FirstLineReading first = read_first_line(path);
  std::vector<std::string_view> cells;
  split(first.text, first.separator, &cells);
  return {first.line, std::vector<std::string>(cells.begin(), cells.end()), first.header};
}

FirstLineGuess text_first_line_guess(const std::string& path) {
  const FirstLineReading first = read_first_line(path);
  if (first.kind == FirstLine::kRow) return {};
  if (first.header) {
    if (first.kind != FirstLine::kHeader) return {first.line, true};
    // A header of names ("a,b") is plain; one of numbers (years, or in quotes beside empty
    // cells: "","1","2"), or pandas' index header (",0,1"), could have been meant as a row.
    std::vector<std::string_view> cells;
    split(first.text, first.separator, &cells);
    for (std::string_view cell : cells) {
      double value;
      if (!cell.empty() && parse_number(cell, &value) != Parse::kOk) return {};
    }
    return {first.line, true};
  }
  // Read as a row: numbered names may have been meant as a header, and so may quoted numbers
  // over lines that quote every cell; alone, quoted numbers or years are the one row.
  if (first.kind == FirstLine::kYearNames) return {};
  if (first.kind == FirstLine::kQuotedNumbers) {
    return first.row_follows ? FirstLineGuess{first.line, false, false, true} : FirstLineGuess{};
  }
  return {first.line, false, !first.row_follows};
}

}  // namespace emix::io::detail
