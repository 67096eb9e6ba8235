// data/text_reader.h: reads text files line by line, plain or gzip-compressed (zlib detects
// which), with the byte position for progress lines. Lines come without their '\n' (and
// without a trailing '\r', so Windows files read the same); any other byte, NUL included, is
// kept (the tokenizer's cleaning decides what to drop).
#pragma once
#include <cstdint>
#include <string>

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

  private:
    std::string path_;
    void* gz_ = nullptr;  // gzFile
    int64_t file_size_ = 0;
    int64_t line_number_ = 0;
    std::string buffer_;      // bytes read from the file and not yet returned
    size_t buffer_pos_ = 0;   // start of the unreturned bytes in buffer_
    bool eof_ = false;
};

}  // namespace wr
