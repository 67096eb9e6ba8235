// common/tensor_file.cpp: reader and writer of the named-tensor files described in tensor_file.h.
#include "common/tensor_file.h"

#include <algorithm>
#include <cstring>

#include "common/util.h"

namespace wr {

int64_t Tensor::numel() const {
    int64_t n = 1;
    for (int64_t d : shape) n *= d;
    return n;
}

namespace {
constexpr char kMagic[8] = {'W', 'R', 'T', 'E', 'N', 'S', 'O', 'R'};
}

TensorFile TensorFile::load(const std::string& path) {
    const std::string bytes = read_file(path);
    TensorFile file;
    file.path_ = path;
    if (bytes.size() < 8 || std::memcmp(bytes.data(), kMagic, 8) != 0) fail(path, "magic", "not a tensor file (expected 'WRTENSOR')");
    size_t pos = 8;
    auto take = [&](void* out, size_t n, const std::string& what) {
        if (n > bytes.size() - pos) fail(path, what, "runs past the end of the file (truncated)");
        if (n > 0) std::memcpy(out, bytes.data() + pos, n);  // an empty vector's data() may be null, which memcpy must not get
        pos += n;
    };
    while (pos < bytes.size()) {
        uint32_t name_len = 0, dtype = 0, ndim = 0;
        take(&name_len, 4, "name length");
        std::string name(std::min<size_t>(name_len, bytes.size() - pos), '\0');  // no more than the file holds
        take(name.data(), name_len, "name");
        take(&dtype, 4, name + ".dtype");
        take(&ndim, 4, name + ".ndim");
        if (dtype > 1) fail(path, name + ".dtype", "is " + std::to_string(dtype) + ", must be 0 (float32) or 1 (int32)");
        if (ndim > 8) fail(path, name + ".ndim", "is " + std::to_string(ndim) + ", at most 8 supported");
        Tensor t;
        t.dtype = (Tensor::DType)dtype;
        t.shape.resize(ndim);
        take(t.shape.data(), 8 * ndim, name + ".shape");
        for (int64_t d : t.shape)
            if (d < 0 || d > (int64_t)bytes.size()) fail(path, name + ".shape", "has an impossible dimension " + std::to_string(d));
        // The values must fit in the rest of the file. Counted in 128 bits and capped, so that absurd
        // dimensions neither overflow nor make the reader ask for memory before this check.
        unsigned __int128 count = 1;
        for (int64_t d : t.shape) count = std::min<unsigned __int128>(count * (uint64_t)d, (unsigned __int128)bytes.size() + 1);
        if (4 * count > bytes.size() - pos) fail(path, name + ".data", "runs past the end of the file (truncated)");
        const size_t n = (size_t)count;
        if (t.dtype == Tensor::DType::F32) {
            t.f32.resize(n);
            take(t.f32.data(), 4 * n, name + ".data");
        } else {
            t.i32.resize(n);
            take(t.i32.data(), 4 * n, name + ".data");
        }
        file.tensors_[name] = std::move(t);
    }
    return file;
}

void TensorFile::save(const std::string& path) const {
    std::string out(kMagic, 8);
    auto put_bytes = [&out](const void* p, size_t n) { out.append(static_cast<const char*>(p), n); };
    for (const auto& [name, t] : tensors_) {
        const uint32_t name_len = (uint32_t)name.size(), dtype = (uint32_t)t.dtype, ndim = (uint32_t)t.shape.size();
        put_bytes(&name_len, 4);
        put_bytes(name.data(), name.size());
        put_bytes(&dtype, 4);
        put_bytes(&ndim, 4);
        put_bytes(t.shape.data(), 8 * t.shape.size());
        if (t.dtype == Tensor::DType::F32) put_bytes(t.f32.data(), 4 * t.f32.size());
        else put_bytes(t.i32.data(), 4 * t.i32.size());
    }
    write_file_atomic(path, out);
}

const Tensor& TensorFile::get(const std::string& name) const {
    auto it = tensors_.find(name);
    if (it == tensors_.end()) fail(path_, name, "no such tensor in the file");
    return it->second;
}

const std::vector<float>& TensorFile::f32(const std::string& name) const {
    const Tensor& t = get(name);
    if (t.dtype != Tensor::DType::F32) fail(path_, name, "is int32, expected float32");
    return t.f32;
}

const std::vector<int32_t>& TensorFile::i32(const std::string& name) const {
    const Tensor& t = get(name);
    if (t.dtype != Tensor::DType::I32) fail(path_, name, "is float32, expected int32");
    return t.i32;
}

std::vector<std::string> TensorFile::names() const {
    std::vector<std::string> out;
    for (const auto& kv : tensors_) out.push_back(kv.first);
    return out;
}

}  // namespace wr
