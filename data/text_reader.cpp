// data/text_reader.cpp: LineReader over zlib's gz* functions, which read plain files unchanged.
#include "data/text_reader.h"

#include <sys/stat.h>
#include <zlib.h>

#include <cerrno>
#include <cstring>

#include "common/util.h"

namespace wr {

LineReader::LineReader(const std::string& path) : path_(path) {
    struct stat st {};
    if (stat(path.c_str(), &st) != 0) throw Error(path + ": cannot open: " + std::strerror(errno));
    file_size_ = st.st_size;
    gzFile f = gzopen(path.c_str(), "rb");
    if (!f) throw Error(path + ": cannot open: " + std::strerror(errno));
    gzbuffer(f, 1 << 20);
    gz_ = f;
}

LineReader::~LineReader() {
    if (gz_) gzclose(static_cast<gzFile>(gz_));
}

bool LineReader::next(std::string& line) {
    line.clear();
    while (true) {
        const char* begin = buffer_.data() + buffer_pos_;
        const size_t available = buffer_.size() - buffer_pos_;
        const char* newline = static_cast<const char*>(std::memchr(begin, '\n', available));
        if (newline || eof_) {
            const size_t n = newline ? (size_t)(newline - begin) : available;
            if (!newline && n == 0 && line.empty()) return false;  // nothing left
            line.append(begin, n);
            buffer_pos_ += newline ? n + 1 : n;
            break;
        }
        line.append(begin, available);  // a line longer than the buffer continues in the next block
        buffer_.resize(1 << 20);
        const int got = gzread(static_cast<gzFile>(gz_), buffer_.data(), (unsigned)buffer_.size());
        if (got < 0) {
            int err = 0;
            throw Error(path_ + ": read error: " + gzerror(static_cast<gzFile>(gz_), &err));
        }
        buffer_.resize((size_t)got);
        buffer_pos_ = 0;
        eof_ = got == 0;
        int err = Z_OK;
        const char* message = gzerror(static_cast<gzFile>(gz_), &err);
        if (eof_ && err != Z_OK)  // zlib reports a cut-off or damaged .gz only here, as a short read
            throw Error(path_ + ": truncated or corrupt gzip data after line " + std::to_string(line_number_) + ": " + message);
    }
    if (!line.empty() && line.back() == '\r') line.pop_back();
    line_number_++;
    return true;
}

int64_t LineReader::compressed_offset() const { return gzoffset(static_cast<gzFile>(gz_)); }

}  // namespace wr
