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
    gzFile f = static_cast<gzFile>(gz_);
    char chunk[1 << 16];
    bool got_any = false;
    while (gzgets(f, chunk, sizeof chunk) != nullptr) {
        got_any = true;
        size_t n = std::strlen(chunk);
        const bool complete = n > 0 && chunk[n - 1] == '\n';
        line.append(chunk, complete ? n - 1 : n);
        if (complete) break;
    }
    if (!got_any) {
        int err = 0;
        const char* msg = gzerror(f, &err);
        if (err != Z_OK && err != Z_STREAM_END) throw Error(path_ + ": read error: " + msg);
        return false;
    }
    if (!line.empty() && line.back() == '\r') line.pop_back();
    line_number_++;
    return true;
}

int64_t LineReader::compressed_offset() const { return gzoffset(static_cast<gzFile>(gz_)); }

}  // namespace wr
