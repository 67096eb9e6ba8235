// data/text_reader.h: reads text files line by line, plain or gzip-compressed, with the byte
// position for progress lines. Lines come without their '\n' (and without a trailing '\r', so
// Windows files read the same); any other byte, NUL included, is kept (the tokenizer's cleaning
// decides what to drop). Every text input of the project (prepare's text files, TSV/CSV/JSON-lines
// tables) is read through this class, so what it checks holds for all of them:
//   gzip    a file that starts with gzip's magic bytes (1f 8b) is decompressed, whatever its
//           name; a file named *.gz must be gzip data. Concatenated members (gzip -c a >> f;
//           gzip -c b >> f), which gzip -d reads as one text, are read one after the other.
//           A cut-off or damaged member, and bytes after the last member that are not another
//           member (trailing garbage), are errors naming the file.
//   UTF-8   lines that are not valid UTF-8 (a Latin-1 file, say) are returned as they are (the
//           tokenizer reads each invalid byte as U+FFFD and drops it, as Hugging Face does), but
//           counted: at the end of the file one warning on stderr names the file, the number of
//           invalid bytes and lines, and the first such line.
// Errors throw wr::Error naming the file.
#pragma once
#include <cstdint>
#include <cstdio>
#include <string>
#include <vector>

struct z_stream_s;  // zlib's stream state (zlib.h stays out of this header)

namespace wr {

class LineReader {
  public:
    explicit LineReader(const std::string& path);  // throws wr::Error naming the file
    ~LineReader();
    LineReader(const LineReader&) = delete;
    LineReader& operator=(const LineReader&) = delete;

    bool next(std::string& line);  // false at end of file
    int64_t line_number() const { return line_number_; }  // 1-based number of the last line read
    int64_t compressed_offset() const;  // bytes of the file consumed so far (for progress)
    int64_t file_size() const { return file_size_; }
    const std::string& path() const { return path_; }

    // Invalid UTF-8 in the lines read so far: bytes, lines holding any, the first such line (0: none).
    int64_t invalid_utf8_bytes() const { return invalid_bytes_; }
    int64_t invalid_utf8_lines() const { return invalid_lines_; }
    int64_t first_invalid_utf8_line() const { return first_invalid_line_; }

  private:
    size_t read_text(char* out, size_t capacity);  // up to `capacity` bytes of text; 0 at the end
    bool refill();                                 // more file bytes after the unread ones; false at end of file
    size_t unread() const { return input_end_ - input_pos_; }
    void close();

    std::string path_;
    FILE* file_ = nullptr;
    z_stream_s* z_ = nullptr;  // gzip files only
    bool in_member_ = false;   // gzip: inside a member (its end not reached yet)
    int64_t file_size_ = 0;
    std::vector<unsigned char> input_;  // file bytes read and not yet consumed: [input_pos_, input_end_)
    size_t input_pos_ = 0, input_end_ = 0;
    int64_t file_read_ = 0;             // bytes read from the file so far
    int64_t line_number_ = 0;
    std::string buffer_;      // text read from the file and not yet returned
    size_t buffer_pos_ = 0;   // start of the unreturned bytes in buffer_
    bool eof_ = false;
    int64_t invalid_bytes_ = 0, invalid_lines_ = 0, first_invalid_line_ = 0;
    bool warned_ = false;
};

}  // namespace wr
