// data/text_reader.cpp: LineReader: plain files read as they are, gzip files inflated by zlib one
// member after another, every line counted for invalid UTF-8.
#include "data/text_reader.h"

#include <sys/stat.h>
#include <zlib.h>

#include <cerrno>
#include <cstring>

#include "common/utf8.h"
#include "common/util.h"

namespace wr {

namespace {

constexpr size_t kBlock = 1 << 20;

bool named_gz(const std::string& path) { return path.size() >= 3 && path.compare(path.size() - 3, 3, ".gz") == 0; }

bool gzip_magic(const unsigned char* p) { return p[0] == 0x1f && p[1] == 0x8b; }

}  // namespace

LineReader::LineReader(const std::string& path) : path_(path) {
    file_ = std::fopen(path.c_str(), "rb");
    if (!file_) throw Error(path + ": cannot open: " + std::strerror(errno));
    try {
        struct stat st {};
        if (fstat(fileno(file_), &st) != 0) throw Error(path + ": cannot open: " + std::strerror(errno));
        file_size_ = st.st_size;
        input_.resize(kBlock);
        while (unread() < 2 && refill()) {
        }
        const bool gzip = unread() >= 2 && gzip_magic(input_.data());
        if (!gzip && named_gz(path))
            throw Error(path + ": named .gz but not gzip data (" +
                        (unread() < 2 ? "the file has only " + std::to_string(unread()) + (unread() == 1 ? " byte" : " bytes")
                                      : std::string("it does not start with gzip's bytes 1f 8b")) +
                        "): compress it with gzip, or name it without .gz");
        if (gzip) {
            z_ = new z_stream_s{};
            if (inflateInit2(z_, 16 + MAX_WBITS) != Z_OK) throw Error(path + ": cannot start zlib's decompression");
            in_member_ = true;
        }
    } catch (...) {
        close();
        throw;
    }
}

LineReader::~LineReader() { close(); }

void LineReader::close() {
    if (z_) inflateEnd(z_);
    delete z_;
    z_ = nullptr;
    if (file_) std::fclose(file_);
    file_ = nullptr;
}

bool LineReader::refill() {
    if (input_pos_ > 0) {  // keep the unread bytes, at the front
        std::memmove(input_.data(), input_.data() + input_pos_, unread());
        input_end_ -= input_pos_;
        input_pos_ = 0;
    }
    const size_t got = std::fread(input_.data() + input_end_, 1, input_.size() - input_end_, file_);
    if (got == 0 && std::ferror(file_)) throw Error(path_ + ": read error: " + std::strerror(errno));
    input_end_ += got;
    file_read_ += (int64_t)got;
    return got > 0;
}

size_t LineReader::read_text(char* out, size_t capacity) {
    if (!z_) {  // plain text: the file's bytes
        if (unread() == 0 && !refill()) return 0;
        const size_t n = std::min(capacity, unread());
        std::memcpy(out, input_.data() + input_pos_, n);
        input_pos_ += n;
        return n;
    }
    z_->next_out = reinterpret_cast<Bytef*>(out);
    z_->avail_out = (uInt)capacity;
    while (z_->avail_out == capacity) {  // until some text comes out, or the end
        if (!in_member_) {
            // Between members: the end of the file, or another member; anything else is garbage.
            while (unread() < 2 && refill()) {
            }
            if (unread() == 0) return 0;
            if (unread() < 2 || !gzip_magic(input_.data() + input_pos_))
                throw Error(path_ + ": the gzip data ends at byte " + std::to_string(compressed_offset()) +
                            ", and the bytes after it are not another gzip member: trailing garbage (a damaged or wrongly joined file)");
            inflateReset(z_);
            in_member_ = true;
        }
        if (unread() == 0 && !refill())
            throw Error(path_ + ": truncated or corrupt gzip data after line " + std::to_string(line_number_) +
                        ": the file ends inside a gzip member");
        z_->next_in = input_.data() + input_pos_;
        z_->avail_in = (uInt)unread();
        const int rc = inflate(z_, Z_NO_FLUSH);
        input_pos_ = input_end_ - z_->avail_in;
        if (rc == Z_STREAM_END) in_member_ = false;
        else if (rc != Z_OK && rc != Z_BUF_ERROR)
            throw Error(path_ + ": truncated or corrupt gzip data after line " + std::to_string(line_number_) + ": " +
                        (z_->msg ? z_->msg : "zlib error " + std::to_string(rc)));
    }
    return capacity - z_->avail_out;
}

bool LineReader::next(std::string& line) {
    line.clear();
    while (true) {
        const char* begin = buffer_.data() + buffer_pos_;
        const size_t available = buffer_.size() - buffer_pos_;
        const char* newline = static_cast<const char*>(std::memchr(begin, '\n', available));
        if (newline || eof_) {
            const size_t n = newline ? (size_t)(newline - begin) : available;
            if (!newline && n == 0 && line.empty()) {  // nothing left
                if (invalid_lines_ > 0 && !warned_) {
                    warned_ = true;
                    std::fprintf(stderr,
                                 "%s: warning: %lld byte%s of invalid UTF-8 on %lld line%s, the first on line %lld; the tokenizer "
                                 "drops them (is the file in another encoding, Latin-1 say? iconv -f latin1 -t utf-8 converts it)\n",
                                 path_.c_str(), (long long)invalid_bytes_, invalid_bytes_ == 1 ? "" : "s", (long long)invalid_lines_,
                                 invalid_lines_ == 1 ? "" : "s", (long long)first_invalid_line_);
                }
                return false;
            }
            line.append(begin, n);
            buffer_pos_ += newline ? n + 1 : n;
            break;
        }
        line.append(begin, available);  // a line longer than the buffer continues in the next block
        buffer_.resize(kBlock);
        buffer_.resize(read_text(buffer_.data(), buffer_.size()));
        buffer_pos_ = 0;
        eof_ = buffer_.empty();
    }
    if (!line.empty() && line.back() == '\r') line.pop_back();
    line_number_++;
    if (const int64_t invalid = wr::invalid_utf8_bytes(line)) {
        if (invalid_lines_++ == 0) first_invalid_line_ = line_number_;
        invalid_bytes_ += invalid;
    }
    return true;
}

int64_t LineReader::compressed_offset() const { return file_read_ - (int64_t)unread(); }

}  // namespace wr
