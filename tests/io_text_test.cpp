// CSV / whitespace text and raw binary input.
#include <locale.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include "io_test_util.hpp"
#include "sanitizers.hpp"

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <locale>
#include <string>
#include <tuple>
#include <vector>

#include "emix/errors.hpp"
#include "emix/fit.hpp"
#include "emix/io.hpp"
#include "emix/model.hpp"

namespace {

using emix::testing::expect_error;
using emix::testing::values_of;

namespace fs = std::filesystem;
using emix::DType;
using emix::HostMatrix;
using emix::InvalidArgument;
using emix::IoError;
namespace io = emix::io;

class TextTest : public emix::testing::TempDirTest {};

TEST_F(TextTest, CsvWithHeaderRow) {
  const std::string p = file("a.csv", "x,y,z\n1,2,3\n4.5,-6e-1,+7\n");
  const HostMatrix m = io::read_matrix(p);
  EXPECT_EQ(m.rows(), 2);
  EXPECT_EQ(m.cols(), 3);
  EXPECT_EQ(values_of(m), (std::vector<double>{1, 2, 3, 4.5, -0.6, 7}));
}

// pandas' DataFrame.to_csv writes the index as a first column with an empty name, R's write.csv
// its row names under "": read as a feature, either would fit the row numbers. An unnamed first
// column of whole numbers (in any order: an index after filtering or sorting) is refused,
// naming the cure, in any chunk of rows; R's row names that are not numbers name it too. A
// nameless column of other values, one row, or row numbers without a header are data.
TEST_F(TextTest, AnIndexColumnIsRefusedNotFitted) {
  const std::string pandas = file("df.csv", ",x,y\n0,1.5,2\n1,3,4\n2,5,6.25\n");
  expect_error<IoError>([&] { io::read_matrix(pandas); },
                        "column 1 has no name in the header (line 1) and holds whole numbers only "
                        "(0, 1, ...): an index or row names, not a feature. pandas' to_csv and "
                        "R's write.csv write one by default");
  expect_error<IoError>([&] { io::read_matrix(pandas); }, "to_csv(..., index=False)");
  io::ReadOptions chunk;
  chunk.first_row = 1;
  chunk.row_count = 2;
  expect_error<IoError>([&] { io::read_matrix(pandas, chunk); }, "whole numbers only (1, 2, ...)");
  // pd.DataFrame(x).to_csv(): the columns are named 0, 1, ... after the index's empty name.
  const std::string numbered = file("numbered.csv", ",0,1\n0,1.5,2\n1,3,4\n");
  expect_error<IoError>([&] { io::read_matrix(numbered); }, "whole numbers only (0, 1, ...)");
  const std::string filtered = file("filtered.csv", ",x\n7,1.5\n3,2\n12,2.5\n");
  expect_error<IoError>([&] { io::read_matrix(filtered); }, "whole numbers only (7, 3, ...)");
  // R's write.csv: quoted names, an empty one first, and quoted row names.
  const std::string r = file("r.csv", "\"\",\"x\",\"y\"\n\"1\",1.5,2\n\"2\",3,4\n");
  expect_error<IoError>([&] { io::read_matrix(r); }, "whole numbers only (1, 2, ...)");
  expect_error<IoError>([&] { io::read_matrix(r); }, "write.csv(..., row.names = FALSE)");
  const std::string named_rows = file("rn.csv", "\"\",\"x\"\n\"a\",1.5\n\"b\",3\n");
  expect_error<IoError>([&] { io::read_matrix(named_rows); },
                        "row 1, column 1: 'a' is not a number (line 2); column 1 has no name in "
                        "the header (line 1): row names or an index?");
  // pandas reads that index back as a column named "Unnamed: 0", which to_csv(index=False)
  // then writes under that name: it was fitted as a feature (the clusters were row numbers).
  const std::string reexported = file("re.csv", "Unnamed: 0,x\n0,1.5\n1,3\n2,0.5\n");
  expect_error<IoError>([&] { io::read_matrix(reexported); },
                        "column 1 is named 'Unnamed: 0' in the header (line 1), pandas' name for "
                        "a column without one (an index written to the file, read back and "
                        "written again) and holds whole numbers only (0, 1, ...)");
  EXPECT_EQ(values_of(io::read_matrix(file("one.csv", ",x\n0,1.5\n"))),
            (std::vector<double>{0, 1.5}));
  EXPECT_EQ(values_of(io::read_matrix(file("named.csv", "id,x\n0,1.5\n1,3\n"))),
            (std::vector<double>{0, 1.5, 1, 3}));
  EXPECT_EQ(values_of(io::read_matrix(file("nameless.csv", ",x\n0.5,1.5\n2,3\n"))),
            (std::vector<double>{0.5, 1.5, 2, 3}));
  EXPECT_EQ(values_of(io::read_matrix(file("no_header.csv", "0,1.5\n1,3\n"))),
            (std::vector<double>{0, 1.5, 1, 3}));
}

// pd.DataFrame(x).to_csv(p, index=False) names the columns 0, 1, ...: a first line that is a
// data row's too. Under real-valued rows ("1.0", "2.5") it is the header; under whole numbers
// (counts), or alone, it is a row. Chunks and the line numbers of messages agree.
TEST_F(TextTest, PandasNumberedNamesAreAHeaderOverRealValues) {
  const std::string reals = file("reals.csv", "0,1,2\n1.5,2.0,3\n4,5,6.25\n");
  EXPECT_EQ(values_of(io::read_matrix(reals)), (std::vector<double>{1.5, 2, 3, 4, 5, 6.25}));
  io::ReadOptions second;
  second.first_row = 1;
  second.row_count = 1;
  EXPECT_EQ(values_of(io::read_matrix(reals, second)), (std::vector<double>{4, 5, 6.25}));
  EXPECT_EQ(io::text_line_of_row(reals, 1), 2);
  const std::string counts = file("counts.csv", "0,1,2\n3,0,1\n");
  EXPECT_EQ(values_of(io::read_matrix(counts)), (std::vector<double>{0, 1, 2, 3, 0, 1}));
  EXPECT_EQ(values_of(io::read_matrix(counts, second)), (std::vector<double>{3, 0, 1}));
  EXPECT_EQ(io::text_line_of_row(counts, 1), 1);
  EXPECT_EQ(io::text_line_of_row(counts, 2), 2);
  EXPECT_EQ(values_of(io::read_matrix(file("alone.csv", "0 1 2\n"))),
            (std::vector<double>{0, 1, 2}));
  // One column: a first value written "0" over reals is a row (zero-inflated data), though
  // pandas names one unnamed column "0" too.
  EXPECT_EQ(values_of(io::read_matrix(file("one.csv", "0\n0.5\n1.5\n"))),
            (std::vector<double>{0, 0.5, 1.5}));
  // Years (four-digit whole numbers one apart, three or more) are names, over reals and over
  // counts per year; other runs of whole numbers ("1,2,3", "3,4") are a row, as is a pair of
  // years.
  const std::string years = file("years.csv", "2019,2020,2021\n1.5,2,3\n4,5,6.25\n");
  EXPECT_EQ(values_of(io::read_matrix(years)), (std::vector<double>{1.5, 2, 3, 4, 5, 6.25}));
  EXPECT_EQ(io::text_line_of_row(years, 1), 2);
  const std::string year_counts = file("year_counts.csv", "\"2019\",\"2020\",\"2021\"\n3,0,1\n");
  EXPECT_EQ(io::read_matrix(year_counts).rows(), 1);
  EXPECT_EQ(io::text_line_of_row(year_counts, 1), 2);
  EXPECT_EQ(io::read_matrix(file("run.csv", "1,2,3\n4.5,5,6\n7,8.25,9\n")).rows(), 3);
  EXPECT_EQ(io::read_matrix(file("pair.csv", "2019,2020\n1.5,2\n")).rows(), 2);
  EXPECT_EQ(io::read_matrix(file("down.csv", "2021,2020,2019\n1.5,2,3\n")).rows(), 2);
  const std::string ragged = file("ragged.csv", "0,1,2\n1.5,2\n");
  expect_error<IoError>([&] { io::read_matrix(ragged); },
                        "the header (line 1) has 3 columns but row 1 has 2 (line 2)");
}

// NumPy's loadtxt takes "# ..." after values as a comment; emix reads comments on lines of their
// own, and said only "'2.0 # c' is not a number" or "row 3 has 4 columns, expected 2".
TEST_F(TextTest, ACommentAfterValuesIsNamedAsOne) {
  const std::string hint = "'#' starts a comment only at the start of a line";
  expect_error<IoError>([&] { io::read_matrix(file("c.csv", "a,b\n1.0,2.0 # c\n")); }, hint);
  expect_error<IoError>([&] { io::read_matrix(file("c.txt", "1 2\n3 4\n5 6 # c\n")); }, hint);
  EXPECT_EQ(values_of(io::read_matrix(file("own.txt", "# a comment\n1 2\n  # another\n3 4\n"))),
            (std::vector<double>{1, 2, 3, 4}));
}

// Cells in double quotes (RFC 4180) are their content: quoted numbers are numbers, a quoted name
// may hold the separator, and the separator is chosen outside quotes. On the first line a quoted
// cell is a name, so that R's header of numeric names ("1","2") stays a header. A quote that does
// not close takes the rest of its line, which then misses columns.
TEST_F(TextTest, QuotedCellsAreTheirContent) {
  const std::string quoted =
      file("q.csv", "\"height; cm\",\"weight, kg\"\n\"1.5\", 2\n 3 ,\"-4e1\"\n");
  EXPECT_EQ(values_of(io::read_matrix(quoted)), (std::vector<double>{1.5, 2, 3, -40}));
  const std::string blanks = file("q.txt", "\"a b\" c\n\"1\"  2\n");
  EXPECT_EQ(values_of(io::read_matrix(blanks)), (std::vector<double>{1, 2}));
  const std::string numeric_names = file("n.csv", "\"1\",\"2\"\n0.5,0.7\n0.1,0.2\n");
  EXPECT_EQ(values_of(io::read_matrix(numeric_names)), (std::vector<double>{0.5, 0.7, 0.1, 0.2}));
  EXPECT_EQ(io::text_line_of_row(numeric_names, 2), 3);  // messages count the header too
  // Where every line quotes every cell (Python's csv.QUOTE_ALL), the first is a row: it was taken
  // for names, and every label was one row off its data. pandas' numbered names written so stay
  // a header over reals (to_csv(index=False, quoting=QUOTE_ALL) of a frame's default names).
  const std::string quote_all = file("all.csv", "\"0.5\",\"0.7\"\n\"0.1\",\"0.2\"\n");
  EXPECT_EQ(values_of(io::read_matrix(quote_all)), (std::vector<double>{0.5, 0.7, 0.1, 0.2}));
  EXPECT_EQ(io::text_line_of_row(quote_all, 2), 2);
  const std::string pandas_all =
      file("pandas_all.csv", "\"0\",\"1\"\n\"1.5\",\"2.5\"\n\"3\",\"4\"\n");
  EXPECT_EQ(values_of(io::read_matrix(pandas_all)), (std::vector<double>{1.5, 2.5, 3, 4}));
  EXPECT_EQ(io::text_line_of_row(pandas_all, 1), 2);
  EXPECT_EQ(values_of(io::read_matrix(file("one_quoted.csv", "\"0.5\",\"0.7\"\n"))),
            (std::vector<double>{0.5, 0.7}));
  const std::string open = file("open.csv", "x,y\n\"1.5,2\n");
  expect_error<IoError>([&] { io::read_matrix(open); }, "has 2 columns but row 1 has 1");
  // The rows choose the separator under a header: a ';' in a name split every row into one
  // cell ("the header (line 1) has 2 columns but row 1 has 1").
  const std::string named = file("named.csv", "height (cm),weight; kg\n1,2\n3,4\n");
  EXPECT_EQ(values_of(io::read_matrix(named)), (std::vector<double>{1, 2, 3, 4}));
}

// A file not named as binary is text unless its first bytes say otherwise: a .npy under another
// name is read as one; an archive, a compressed file or other binary data is named as such
// instead of being parsed as text ("the header has 5 columns but row 1 has 1").
TEST_F(TextTest, BinaryContentUnderATextNameIsRecognised) {
  const std::string data = std::string("\0\0\0\0\0\0\xf0\x3f", 8) +  // 1.0
                           std::string("\0\0\0\0\0\0\0\x40", 8);     // 2.0
  const std::string named_otherwise =
      file("array_npy", emix::testing::npy(emix::testing::dict("<f8", "(2, 1)"), data));
  EXPECT_EQ(values_of(io::read_matrix(named_otherwise)), (std::vector<double>{1, 2}));
  expect_error<IoError>([&] { io::read_matrix(file("a.npz", "PK\x03\x04rest")); }, "a zip archive");
  expect_error<IoError>([&] { io::read_matrix(file("a.csv.gz", "\x1f\x8b\x08rest")); },
                        "gzip-compressed");
  expect_error<IoError>([&] { io::read_matrix(file("b.txt", std::string("1,2\n3,\0", 8))); },
                        "binary data (a NUL byte at byte 7)");
  // Excel's "Unicode text": called binary data before, with advice about --dtype and --dims.
  expect_error<IoError>(
      [&] {
        io::read_matrix(file("u.csv", std::string("\xFF\xFE"
                                                  "1\0,\0"
                                                  "2\0\n\0",
                                                  10)));
      },
      "UTF-16 text");
}

TEST_F(TextTest, SeparatorsAreDetectedPerFile) {
  const std::vector<double> expected = {1, 2, 3, 4, 5, 6};
  EXPECT_EQ(values_of(io::read_matrix(file("c.csv", "1, 2 ,3\n4 ,5, 6\n"))), expected);
  EXPECT_EQ(values_of(io::read_matrix(file("s.csv", "a;b;c\n1;2;3\n4;5;6\n"))), expected);
  EXPECT_EQ(values_of(io::read_matrix(file("t.tsv", "1\t2\t3\n4\t5\t6\n"))), expected);
  EXPECT_EQ(values_of(io::read_matrix(file("w.txt", "  1   2\t 3  \n4 5 6"))), expected);
  // TSV (named *.tsv or *.tab), as spreadsheets, pandas and R write it: names with spaces; an
  // empty cell is named (read as runs of blanks, it shifted the row's next values left), and so
  // is a tab at a row's end. Under other names, tabs stay blanks: columns aligned with tabs.
  EXPECT_EQ(values_of(io::read_matrix(
                file("h.tsv", "body mass\tbeak length\tage\n1\t2\t3\n4 \t 5\t6\n"))),
            expected);
  expect_error<IoError>([&] { io::read_matrix(file("e.tsv", "1\t2\t3\n4\t\t6\n")); },
                        {"row 2, column 2 is empty (line 2)"});
  expect_error<IoError>([&] { io::read_matrix(file("end.tab", "1\t2\t\n4\t5\t\n")); },
                        "row 1, column 3 is empty (line 1); the line ends with a separator");
  EXPECT_EQ(values_of(io::read_matrix(file("a.txt", "1\t\t2\t3\n4\t5\t\t6\n"))), expected);
  // Any extension other than .npy / .bin / .raw is text.
  EXPECT_EQ(values_of(io::read_matrix(file("data", "1 2 3\n4 5 6\n"))), expected);
  // An explicit format overrides the extension.
  io::ReadOptions text;
  text.format = io::FileFormat::kText;
  EXPECT_EQ(values_of(io::read_matrix(file("odd.npy", "1 2 3\n4 5 6\n"), text)), expected);
}

TEST_F(TextTest, CommentsBlankLinesCrlfAndByteOrderMark) {
  const std::string p = file("c.csv",
                             "\xEF\xBB\xBF# produced by a spreadsheet\r\n"
                             "\r\n"
                             "a,b\r\n"
                             "   # indented comment\r\n"
                             "1,2\r\n"
                             "\r\n"
                             "  \t\r\n"
                             "3,4");  // no final newline
  EXPECT_EQ(values_of(io::read_matrix(p)), (std::vector<double>{1, 2, 3, 4}));
}

// A lone carriage return ends a line (classic Mac OS, some spreadsheet exports): it was read
// as part of the cell ("'2\x0d3' is not a number"). Row numbers in messages count such lines.
TEST_F(TextTest, LoneCarriageReturnsEndLines) {
  EXPECT_EQ(values_of(io::read_matrix(file("cr.csv", "a,b\r1,2\r\r# note\r3,4\r"))),
            (std::vector<double>{1, 2, 3, 4}));
  EXPECT_EQ(values_of(io::read_matrix(file("mixed.csv", "1,2\r\r\n3,4\n5,6"))),
            (std::vector<double>{1, 2, 3, 4, 5, 6}));
  expect_error<IoError>([&] { io::read_matrix(file("bad.csv", "1,2\r3,x\r")); },
                        {"row 2, column 2: 'x' is not a number (line 2)"});
  // A file larger than the 4 MiB read buffer, whose first read ends between a "\r" and its
  // "\n" (byte 2^22 - 1 is the "\r" of row 838861): one row, not a row and an empty line.
  std::string crlf, cr;
  for (int i = 0; i < 900000; ++i) {
    crlf += "1,2\r\n";
    cr += "1,2\r";
  }
  ASSERT_EQ(crlf[(std::size_t{1} << 22) - 1], '\r');
  ASSERT_EQ(crlf[std::size_t{1} << 22], '\n');
  EXPECT_EQ(io::read_matrix(file("big_crlf.csv", crlf)).rows(), 900000);
  EXPECT_EQ(io::read_matrix(file("big_cr.csv", cr)).rows(), 900000);
}

// A cell that is no number says what it likely is: a missing value (empty, NA, ?, ...), or the
// empty column a separator at the end of every line makes.
TEST_F(TextTest, CellsThatAreNoNumberSayWhatTheyLikelyAre) {
  const std::string trailing = file("trailing.csv", "1,2,\n3,4,\n");
  expect_error<IoError>([&] { io::read_matrix(trailing); },
                        trailing +
                            ": row 1, column 3 is empty (line 1); the line ends with a separator, "
                            "which makes an empty last column: remove the trailing separators");
  // A chunk after row 1, as an out-of-core fit reads it, is told the same.
  io::ReadOptions chunk;
  chunk.first_row = 1;
  expect_error<IoError>([&] { io::read_matrix(trailing, chunk); },
                        trailing +
                            ": row 2, column 3 is empty (line 2); the line ends with a "
                            "separator");
  // Where row 1 has a last value, an empty last cell later is a missing value.
  const std::string last_hole = file("last_hole.csv", "1,2,3\n4,5,\n");
  expect_error<IoError>([&] { io::read_matrix(last_hole, chunk); },
                        last_hole + ": row 2, column 3 is empty (line 2); a missing value?");
  // Row 1's empty last cell under a header that names that column is a missing value too (a
  // TSV's "1\t" was told to remove trailing separators, which only that row had).
  const std::string named = file("named.tsv", "a\tb\n1\t\n3\t4\n");
  expect_error<IoError>([&] { io::read_matrix(named); },
                        named + ": row 1, column 2 is empty (line 2); a missing value?");
  // pandas' numbered names name every column too; a header split again by the rows' separator
  // (';') is judged by its cells then, and its last is empty.
  const std::string numbered = file("numbered.csv", "0,1\n1.5,\n3.5,4.5\n");
  expect_error<IoError>([&] { io::read_matrix(numbered); },
                        numbered + ": row 1, column 2 is empty (line 2); a missing value?");
  const std::string resplit = file("resplit.csv", "a,b;\n1;\n3;4\n");
  expect_error<IoError>([&] { io::read_matrix(resplit); },
                        resplit +
                            ": row 1, column 2 is empty (line 2); the line ends with a "
                            "separator");
  const std::string hole = file("hole.csv", "a,b\n1,2\n3,\n");
  expect_error<IoError>([&] { io::read_matrix(hole); },
                        hole +
                            ": row 2, column 2 is empty (line 3); a missing value? emix needs "
                            "every value: drop or impute the rows that miss one");
  for (const std::string marker : {"NA", "n/a", "?", "null"}) {
    const std::string na = file("na.csv", "1,2\n" + marker + ",4\n");
    expect_error<IoError>([&] { io::read_matrix(na); },
                          na + ": row 2, column 1: '" + marker +
                              "' is not a number (line 2); a missing value? emix needs every "
                              "value: drop or impute the rows that miss one");
  }
}

TEST_F(TextTest, NumberSyntax) {
  const std::string p = file("n.txt", "0.5 .5 5. -0 +1e3 1E-3 -2.5e+2 123456789012345678\n");
  EXPECT_EQ(values_of(io::read_matrix(p)),
            (std::vector<double>{0.5, 0.5, 5, -0.0, 1000, 1e-3, -250, 123456789012345678.0}));
  // The nearest double, as strtod gives it.
  const HostMatrix m = io::read_matrix(file("p.txt", "0.1\n3.141592653589793238\n"));
  EXPECT_EQ(m.at(0, 0), 0.1);
  EXPECT_EQ(m.at(1, 0), 3.141592653589793);
  io::ReadOptions as_float;
  as_float.dtype = DType::kFloat32;
  const HostMatrix f = io::read_matrix(file("q.txt", "0.1\n"), as_float);
  EXPECT_EQ(f.dtype(), DType::kFloat32);
  EXPECT_EQ(f.as<float>()[0], 0.1f);
}

TEST_F(TextTest, RaggedRowsNameTheRow) {
  // Row 7 (line 9: header, rows 1-6, a comment, then row 7) has 3 columns.
  const std::string p = file("file.csv",
                             "a,b,c,d\n1,2,3,4\n1,2,3,4\n1,2,3,4\n1,2,3,4\n1,2,3,4\n1,2,3,4\n"
                             "# note\n1,2,3\n1,2,3,4\n");
  expect_error<IoError>([&] { io::read_matrix(p); },
                        p + ": row 7 has 3 columns, expected 4 (line 9)");
  const std::string q = file("long.txt", "1 2\n3 4 5\n");
  expect_error<IoError>([&] { io::read_matrix(q); }, q + ": row 2 has 3 columns, expected 2");
  const std::string one = file("short.txt", "1 2\n3\n");
  expect_error<IoError>([&] { io::read_matrix(one); }, one + ": row 2 has 1 column, expected 2");
  const std::string quote = file("quote.csv", "a,b\n1,2\n\"3,4\n");
  expect_error<IoError>([&] { io::read_matrix(quote); },
                        quote +
                            ": row 2 has 1 column, expected 2 (line 3); a double quote on "
                            "this line does not close");
  const std::string h = file("h.csv", "a,b,c\n1,2\n");
  expect_error<IoError>([&] { io::read_matrix(h); },
                        h + ": the header (line 1) has 3 columns but row 1 has 2 (line 2)");
}

TEST_F(TextTest, NonNumericCellsAfterTheFirstLineAreErrors) {
  const std::string p = file("x.csv", "a,b,c\n1,2,3\n4,5,abc\n");
  expect_error<IoError>([&] { io::read_matrix(p); },
                        p + ": row 2, column 3: 'abc' is not a number (line 3)");
  const std::string e = file("e.csv", "1,,3\n");
  expect_error<IoError>([&] { io::read_matrix(e); }, e + ": row 1, column 2 is empty (line 1)");
  const std::string t = file("t.csv", "1,2,\n");
  expect_error<IoError>([&] { io::read_matrix(t); }, t + ": row 1, column 3 is empty (line 1)");
  // A second header-like line is data, and wrong.
  const std::string two = file("two.csv", "a,b\nc,d\n1,2\n");
  expect_error<IoError>([&] { io::read_matrix(two); },
                        two + ": row 1, column 1: 'c' is not a number (line 2)");
  // Decimal commas in a ';' file, and thousands separators, are not numbers; the message says
  // what they likely are, as it does for a column of text.
  const std::string eu = file("eu.csv", "a;b\n1,5;2,5\n");
  expect_error<IoError>([&] { io::read_matrix(eu); },
                        eu + ": row 1, column 1: '1,5' is not a number (line 2); a decimal comma "
                             "or a thousands separator? emix reads numbers written as 1234.5");
  const std::string thousands = file("thousands.csv", "a,b\n\"1,304.5\",2\n");
  expect_error<IoError>([&] { io::read_matrix(thousands); },
                        "'1,304.5' is not a number (line 2); a decimal comma or a thousands "
                        "separator?");
  const std::string ids = file("ids.csv", "id,x\ns0,1.5\ns1,2\n");
  expect_error<IoError>([&] { io::read_matrix(ids); },
                        ids +
                            ": row 1, column 1: 's0' is not a number (line 2); emix reads "
                            "numbers only: drop a column of text (names, IDs, categories)");
  const std::string signs = file("signs.csv", "a,b\n1,+-\n");
  expect_error<IoError>([&] { io::read_matrix(signs); }, "'+-' is not a number (line 2)");
  // A model file given where data go ("the header (line 1) has 1 columns but row 1 has 2").
  const std::string model = file("model.json", "{\n  \"format\": \"emix-model\",\n}\n");
  expect_error<IoError>([&] { io::read_matrix(model); },
                        model + ": a JSON file (a model file?), read as data");
}

// A host program's locale (setlocale(LC_ALL, "de_DE.UTF-8"), or C++'s global locale: a decimal
// comma) changes nothing: the parse of a number out of double's range fell back on strtod, which
// read "2.5e-400" as 2 and "1.5e400" as 1 there, and messages wrote "-0,5" beside "0.9", or
// "0,9" where a stream wrote them.
TEST_F(TextTest, NumbersReadAndNamedAlikeInAHostsCommaLocale) {
  if (EMIX_TEST_ADDRESS_SANITIZER) {
    // glibc's setlocale keeps the LOCPATH it parsed, which LeakSanitizer reports (85 bytes).
    GTEST_SKIP() << "glibc's LOCPATH list is never freed; the plain build runs this test";
  }
  const auto comma_locale = [&] {
    if (setlocale(LC_ALL, "de_DE.UTF-8") != nullptr) return true;
    // Debian's small images have C and C.UTF-8 only: build one where localedef can.
    const std::string command =
        "localedef -i de_DE -f UTF-8 '" + path("de_DE.UTF-8") + "' > /dev/null 2>&1";
    if (std::system(command.c_str()) != 0) return false;
    setenv("LOCPATH", path("").c_str(), 1);
    return setlocale(LC_ALL, "de_DE.UTF-8") != nullptr;
  };
  if (!comma_locale() || std::string(localeconv()->decimal_point) != ",") {
    setlocale(LC_ALL, "C");
    unsetenv("LOCPATH");
    GTEST_SKIP() << "no locale with a decimal comma (de_DE.UTF-8), and localedef could not make "
                    "one";
  }
  const std::locale previous = std::locale::global(std::locale("de_DE.UTF-8"));
  const HostMatrix m = io::read_matrix(file("far.csv", "2.5e-400,1.5\n3,-4.25\n"));
  const std::vector<double> values = values_of(m);
  bool out_of_range_refused = false;
  try {
    io::read_matrix(file("huge.csv", "1.5e400,1\n"));
  } catch (const InvalidArgument& e) {
    out_of_range_refused =
        std::string(e.what()).find("out of the range of float64") != std::string::npos;
  }
  emix::FitOptions options;
  options.n_components = 1;
  options.reg_covar = -0.5;
  std::string message;
  try {
    const std::vector<double> x = {1, 2, 3, 4};
    emix::fit(emix::DataView::host(x.data(), 4, 1), options);
  } catch (const emix::Error& e) {
    message = e.what();
  }
  emix::Model model;
  model.covariance = emix::Covariance::kDiag;
  model.n_components = 2;
  model.n_features = 1;
  model.weights = {0.5, 0.4};
  model.means = {0, 1};
  model.covariances = {1, 1};
  std::string weights_message;
  try {
    model.validate();
  } catch (const InvalidArgument& e) {
    weights_message = e.what();
  }
  std::locale::global(previous);
  setlocale(LC_ALL, "C");
  unsetenv("LOCPATH");
  EXPECT_EQ(values, (std::vector<double>{0, 1.5, 3, -4.25}));
  EXPECT_TRUE(out_of_range_refused);
  EXPECT_NE(message.find("-0.5"), std::string::npos) << message;
  EXPECT_NE(weights_message.find("weights sum to 0.9"), std::string::npos) << weights_message;
}

TEST_F(TextTest, NonFiniteValuesNameRowAndColumn) {
  const std::string p = file("n.csv", "a,b\n1,2\n3,nan\n");
  expect_error<InvalidArgument>([&] { io::read_matrix(p); }, p + ": row 2, column 2 is nan");
  const std::string q = file("i.txt", "# c\n1 2\n\n3 4\n-inf 5\n");
  expect_error<InvalidArgument>([&] { io::read_matrix(q); },
                                q + ": row 3, column 1 is -inf (line 5)");
  const std::string r = file("r.txt", "1 Infinity\n");
  expect_error<InvalidArgument>([&] { io::read_matrix(r); }, r + ": row 1, column 2 is inf");
  const std::string big = file("big.txt", "1 1e400\n");
  expect_error<InvalidArgument>([&] { io::read_matrix(big); },
                                big + ": row 1, column 2: '1e400' is out of the range of float64");
  io::ReadOptions as_float;
  as_float.dtype = DType::kFloat32;
  const std::string f = file("f.txt", "1e300\n");
  expect_error<InvalidArgument>([&] { io::read_matrix(f, as_float); },
                                f + ": row 1, column 1: 1e+300 does not fit in float32");
  // Old: FLT_MAX printed with 8 digits (3.4028235e38, above FLT_MAX as a double) was refused;
  // it rounds to FLT_MAX, as NumPy reads it. Half a unit in the last place beyond rounds to inf.
  const std::string edge = file("edge.txt", "3.4028235e38 -3.4028235e38\n");
  const HostMatrix at_max = io::read_matrix(edge, as_float);
  EXPECT_EQ(at_max.as<float>()[0], std::numeric_limits<float>::max());
  EXPECT_EQ(at_max.as<float>()[1], -std::numeric_limits<float>::max());
  const std::string past = file("past.txt", "3.4028236e38\n");
  expect_error<InvalidArgument>([&] { io::read_matrix(past, as_float); },
                                "does not fit in float32");

  // Without the check NaN and Inf written in the file pass through; a number no double holds
  // is still an error, since it would silently become inf.
  io::ReadOptions lenient;
  lenient.require_finite = false;
  const HostMatrix m = io::read_matrix(p, lenient);
  EXPECT_TRUE(std::isnan(m.at(1, 1)));
  expect_error<InvalidArgument>([&] { io::read_matrix(big, lenient); },
                                big + ": row 1, column 2: '1e400' is out of the range of float64");
  // Underflow is not an error: the nearest double.
  EXPECT_EQ(io::read_matrix(file("u.txt", "1e-400\n")).at(0, 0), 0.0);
}

TEST_F(TextTest, RowRangesSkipOtherRows) {
  // Rows outside the range hold garbage that would fail to parse.
  const std::string p = file("r.csv", "a,b\nxx,yy\n1,2\n# c\n3,4\n5,6\nzz,ww\n");
  io::ReadOptions options;
  options.first_row = 1;
  options.row_count = 3;
  EXPECT_EQ(values_of(io::read_matrix(p, options)), (std::vector<double>{1, 2, 3, 4, 5, 6}));
  options.first_row = 2;
  options.row_count = 2;
  EXPECT_EQ(values_of(io::read_matrix(p, options)), (std::vector<double>{3, 4, 5, 6}));
  options.row_count = 0;
  const HostMatrix none = io::read_matrix(p, options);
  EXPECT_EQ(none.rows(), 0);
  EXPECT_EQ(none.cols(), 2);

  const std::string q = file("q.txt", "1\n2\n3\n4\n5\n");
  options.first_row = 3;
  options.row_count = -1;
  EXPECT_EQ(values_of(io::read_matrix(q, options)), (std::vector<double>{4, 5}));
  options.first_row = 5;
  EXPECT_EQ(io::read_matrix(q, options).rows(), 0);
  options.first_row = 3;
  options.row_count = 3;
  expect_error<InvalidArgument>([&] { io::read_matrix(q, options); },
                                q + ": rows [3, 6) requested but the file has 5 rows");
  options.first_row = 6;
  options.row_count = -1;
  expect_error<InvalidArgument>([&] { io::read_matrix(q, options); },
                                q + ": first_row 6 is past the end: the file has 5 rows");
}

TEST_F(TextTest, EmptyOrMissingFiles) {
  const std::string e = file("e.csv", "");
  expect_error<IoError>([&] { io::read_matrix(e); }, e + ": contains no data rows");
  const std::string h = file("h.csv", "# only\na,b\n\n");
  expect_error<IoError>([&] { io::read_matrix(h); }, h + ": contains no data rows");
  const std::string missing = (dir_ / "missing.csv").string();
  expect_error<IoError>([&] { io::read_matrix(missing); },
                        missing + ": cannot open: No such file or directory");
}

TEST_F(TextTest, ReadVectorFromText) {
  EXPECT_EQ(io::read_vector(file("w.txt", "# weights\n1\n2.5\n\n3\n")),
            (std::vector<double>{1, 2.5, 3}));
  EXPECT_EQ(io::read_vector(file("h.csv", "weight\n4\n5\n")), (std::vector<double>{4, 5}));
  EXPECT_EQ(io::read_vector(file("row.csv", "4,5,6\n")), (std::vector<double>{4, 5, 6}));
  const std::string m = file("m.csv", "1,2\n3,4\n");
  expect_error<IoError>([&] { io::read_vector(m); }, m + ": expected a vector");
  const std::string n = file("n.txt", "1\nnan\n");
  expect_error<InvalidArgument>([&] { io::read_vector(n); }, n + ": row 2, column 1 is nan");
}

TEST_F(TextTest, LinesLongerThanTheReadBufferAndManyBuffers) {
  // One line of 600,000 values (about 4.2 MB) is longer than the 4 MiB read buffer.
  std::string wide;
  const int cols = 600000;
  for (int c = 0; c < cols; ++c) wide += std::to_string(c % 1000) + (c + 1 < cols ? "," : "\n");
  const HostMatrix w = io::read_matrix(file("wide.csv", wide + wide));
  ASSERT_EQ(w.rows(), 2);
  ASSERT_EQ(w.cols(), cols);
  EXPECT_EQ(w.at(1, cols - 1), (cols - 1) % 1000);

  // 400,000 rows (about 5 MB): lines straddle buffer refills.
  std::string tall;
  const int rows = 400000;
  for (int r = 0; r < rows; ++r) tall += std::to_string(r) + " " + std::to_string(-r) + "\n";
  const HostMatrix t = io::read_matrix(file("tall.txt", tall));
  ASSERT_EQ(t.rows(), rows);
  for (int r = 0; r < rows; ++r) {
    ASSERT_EQ(t.at(r, 0), r);
    ASSERT_EQ(t.at(r, 1), -r);
  }
}

// Raw binary.

template <typename T>
std::string bytes_of(const std::vector<T>& values) {
  return std::string(reinterpret_cast<const char*>(values.data()), values.size() * sizeof(T));
}

TEST_F(TextTest, RawBinaryWithDtypeAndColumns) {
  const std::vector<float> v = {1, 2, 3, 4, 5, 6};
  const std::string p = file("x.bin", bytes_of(v));
  io::ReadOptions options;
  options.raw_dtype = "float32";
  options.raw_cols = 3;
  HostMatrix m = io::read_matrix(p, options);
  EXPECT_EQ(m.rows(), 2);
  EXPECT_EQ(m.cols(), 3);
  EXPECT_EQ(values_of(m), (std::vector<double>{1, 2, 3, 4, 5, 6}));
  options.raw_cols = 2;
  EXPECT_EQ(io::read_matrix(p, options).rows(), 3);

  // Any extension is raw when raw_dtype is given; integer types convert.
  const std::string q = file("x.dat", bytes_of(std::vector<std::uint16_t>{1, 65535, 3, 4}));
  io::ReadOptions u16;
  u16.raw_dtype = "uint16";
  u16.raw_cols = 2;
  u16.dtype = DType::kFloat32;
  EXPECT_EQ(values_of(io::read_matrix(q, u16)), (std::vector<double>{1, 65535, 3, 4}));

  // Row ranges seek: the NaN in row 1 is never read.
  std::vector<double> d = {std::numeric_limits<double>::quiet_NaN(), 0, 10, 11, 20, 21, 30, 31};
  const std::string r = file("r.raw", bytes_of(d));
  io::ReadOptions range;
  range.raw_dtype = "float64";
  range.raw_cols = 2;
  range.first_row = 1;
  range.row_count = 2;
  EXPECT_EQ(values_of(io::read_matrix(r, range)), (std::vector<double>{10, 11, 20, 21}));
  range.first_row = 0;
  expect_error<InvalidArgument>([&] { io::read_matrix(r, range); }, r + ": row 1, column 1 is nan");
  range.first_row = 3;
  expect_error<InvalidArgument>([&] { io::read_matrix(r, range); },
                                r + ": rows [3, 5) requested but the file has 4 rows");
}

TEST_F(TextTest, RawBinaryErrors) {
  const std::string p = file("x.bin", std::string(20, '\0'));
  io::ReadOptions options;
  options.raw_dtype = "float64";
  options.raw_cols = 2;
  expect_error<IoError>([&] { io::read_matrix(p, options); },
                        p + ": size 20 bytes is not a multiple of the row size 16 bytes (2 "
                            "columns of float64)");
  expect_error<InvalidArgument>([&] { io::read_matrix(p); },
                                p + ": raw binary needs its element type");
  options.raw_dtype = "complex64";
  expect_error<InvalidArgument>([&] { io::read_matrix(p, options); },
                                p + ": unknown raw dtype 'complex64'");
  options.raw_dtype = "int32";
  options.raw_cols = 0;
  expect_error<InvalidArgument>([&] { io::read_matrix(p, options); },
                                p + ": raw binary needs raw_cols >= 1, got 0");
  options.raw_cols = 5;
  const std::string missing = (dir_ / "missing.raw").string();
  expect_error<IoError>([&] { io::read_matrix(missing, options); },
                        missing + ": cannot open: No such file or directory");
}

// Old: a first row with one non-numeric cell was taken as a header and silently dropped.
TEST_F(TextTest, AHeaderHasNoNumberAndNoMissingValueMarker) {
  const std::string na = file("na.csv", "NA,1,2\n3,4,5\n");
  expect_error<IoError>([&] { io::read_matrix(na); },
                        na + ": row 1, column 1: 'NA' is not a number (line 1)");
  const std::string id = file("id.csv", "id,3\n4,5\n");
  expect_error<IoError>([&] { io::read_matrix(id); },
                        id + ": row 1, column 1: 'id' is not a number (line 1)");
  const std::string missing = file("m.csv", "x,N/A\n1,2\n");
  expect_error<IoError>([&] { io::read_matrix(missing); },
                        missing + ": row 1, column 1: 'x' is not a number (line 1)");
  // Names only, with or without an empty one, are a header.
  EXPECT_EQ(values_of(io::read_matrix(file("h.csv", "x,y\n1,2\n"))), (std::vector<double>{1, 2}));
  EXPECT_EQ(values_of(io::read_matrix(file("e.csv", ",y\n1,2\n"))), (std::vector<double>{1, 2}));
  EXPECT_EQ(io::read_matrix(file("w.txt", "alpha beta\n1 2\n3 4\n")).rows(), 2);
}

// Old: a file without a newline (a device such as /dev/zero) was read into one ever-growing
// line until memory ran out.
TEST_F(TextTest, EndlessLinesEndInAnErrorNotInAllOfMemory) {
  io::ReadOptions text;
  text.format = io::FileFormat::kText;
  expect_error<IoError>([&] { io::read_matrix("/dev/zero", text); },
                        "/dev/zero: line 1 is longer than 256 MiB");
}

TEST_F(TextTest, CellsAreQuotedAsShortPrintableExcerpts) {
  const std::string p = file("c.csv", std::string("1,2\n3,\x01\x1b[2Jz\n"));
  expect_error<IoError>([&] { io::read_matrix(p); },
                        p + ": row 2, column 2: '\\x01\\x1b[2Jz' is not a number (line 2)");
  const std::string long_cell = file("l.csv", "1," + std::string(100000, '9') + "q\n");
  expect_error<IoError>([&] { io::read_matrix(long_cell); },
                        long_cell +
                            ": row 1, column 2: '9999999999999999999999999999999999999999"
                            "...' (100001 bytes) is not a number (line 1)");
}

TEST_F(TextTest, TextLineOfRowSkipsHeaderCommentsAndBlankLines) {
  const std::string p = file("t.csv", "# comment\nx,y\n1,2\n\n# more\n3,4\n5,6\n");
  EXPECT_EQ(io::text_line_of_row(p, 1), 3);
  EXPECT_EQ(io::text_line_of_row(p, 2), 6);
  EXPECT_EQ(io::text_line_of_row(p, 3), 7);
  EXPECT_EQ(io::text_line_of_row(p, 4), 0);
  EXPECT_EQ(io::text_line_of_row(path("t.npy"), 1), 0);  // not text
}

// Old: raw_cols x the element size wrapped (2^61 x 8 = 0) and the file size was divided by it.
TEST_F(TextTest, RawRowSizeIsCheckedBeforeItIsUsed) {
  const std::string p = file("x.bin", std::string(16, '\0'));
  io::ReadOptions options;
  options.raw_dtype = "float64";
  options.raw_cols = std::int64_t{1} << 61;
  expect_error<InvalidArgument>([&] { io::read_matrix(p, options); },
                                p + ": raw_cols 2305843009213693952 of float64 makes a row larger "
                                    "than 2^63 bytes");
  EXPECT_THROW(io::count_rows(p, options), InvalidArgument);
  options.raw_cols = (std::int64_t{1} << 60) - 1;
  expect_error<IoError>([&] { io::read_matrix(p, options); }, "is not a multiple of the row size");
}

// The reader's guesses about a first line of numbers, which the program tells: a header (pandas'
// numbered names over real-valued rows, or numbers in quotes), or pandas' numbered names read as
// a row (over whole numbers, or alone); never a header of names, nor a plain row.
TEST_F(TextTest, AHeaderOfNumbersIsFoundForTheProgramToTell) {
  const auto guess = [](const std::string& path) {
    const io::FirstLineGuess g = io::text_first_line_guess(path);
    return std::make_tuple(g.line, g.read_as_header, g.only_line);
  };
  using Guess = std::tuple<std::int64_t, bool, bool>;
  EXPECT_EQ(guess(file("names.csv", "a,b\n1,2\n")), Guess(0, false, false));
  EXPECT_EQ(guess(file("pandas.txt", "0 1\n2.5 3\n4 5.5\n")), Guess(1, true, false));
  EXPECT_EQ(guess(file("quoted.csv", "\"1\",\"2\"\n3,4.5\n")), Guess(1, true, false));
  // Years as names, over reals and over counts alike.
  EXPECT_EQ(guess(file("years.csv", "2019,2020,2021\n3,4.5,6\n")), Guess(1, true, false));
  EXPECT_EQ(guess(file("year_counts.csv", "2019,2020,2021\n3,4,6\n")), Guess(1, true, false));
  // Quoted numbers over lines that quote every cell (csv.QUOTE_ALL): a row, said to be one
  // (every_line_quoted); pandas' quoted numbered names over quoted reals: a header.
  const io::FirstLineGuess quote_all =
      io::text_first_line_guess(file("quote_all.csv", "\"1\",\"2\"\n\"3\",\"4\"\n"));
  EXPECT_EQ(std::make_tuple(quote_all.line, quote_all.read_as_header, quote_all.every_line_quoted),
            std::make_tuple(std::int64_t{1}, false, true));
  EXPECT_EQ(guess(file("quoted_alone.csv", "\"1\",\"2\"\n")), Guess(0, false, false));
  EXPECT_EQ(guess(file("quoted_names.csv", "\"0\",\"1\"\n\"2.5\",\"3\"\n")), Guess(1, true, false));
  EXPECT_EQ(guess(file("quoted_counts.csv", "\"0\",\"1\"\n\"2\",\"3\"\n")), Guess(1, false, false));
  EXPECT_EQ(guess(file("rows.csv", "1,2\n3,4\n")), Guess(0, false, false));
  // pandas' names over whole numbers, and alone, are read as a row: a guess too.
  EXPECT_EQ(guess(file("counts.csv", "0,1\n1,2\n")), Guess(1, false, false));
  EXPECT_EQ(guess(file("alone.csv", "0,1\n")), Guess(1, false, true));
  EXPECT_EQ(guess(file("later.csv", "# made by hand\n\n0,1\n1.5,2\n")), Guess(3, true, false));
  // The first line as the reader takes it (a header, or numbers the rows under them make one),
  // with its cells unquoted and split as the rows are.
  const auto first_line = [](const std::string& path) {
    const io::TextFirstLine first = io::text_first_line(path);
    return std::make_tuple(first.line, first.cells, first.header);
  };
  using Line = std::tuple<std::int64_t, std::vector<std::string>, bool>;
  EXPECT_EQ(first_line(file("n1.csv", "# c\n\"a\",b c\n1,2\n")), Line(2, {"a", "b c"}, true));
  EXPECT_EQ(first_line(file("n2.csv", "height (cm),weight; kg\n1,2\n")),
            Line(1, {"height (cm)", "weight; kg"}, true));
  EXPECT_EQ(first_line(file("n3.txt", "0 1\n2.5 3\n")), Line(1, {"0", "1"}, true));
  EXPECT_EQ(first_line(file("n4.csv", "0,1\n1,2\n")), Line(1, {"0", "1"}, false));
  EXPECT_EQ(first_line(file("n5.csv", "\"1\",\"2\"\n\"3\",\"4\"\n")), Line(1, {"1", "2"}, false));
  EXPECT_EQ(first_line(file("n6.csv", "1.5,2\n")), Line(1, {"1.5", "2"}, false));
  EXPECT_EQ(first_line(file("n7.csv", "\n")), Line(0, {}, false));
  // As the reader counts rows: the header's line is not one.
  EXPECT_EQ(io::read_matrix(file("pandas2.txt", "0 1\n2.5 3\n4 5.5\n")).rows(), 2);
}

}  // namespace
