// common/tensor_file.h: a tiny file of named tensors, for reference fixtures written by the
// PyTorch scripts in dev/ (dev/tensor_file.py writes the same format) and for debug dumps.
//
//   bytes 0..7   magic "WRTENSOR"
//   then per tensor, to the end of the file:
//     uint32 name length, name bytes (UTF-8)
//     uint32 dtype (0 = float32, 1 = int32), uint32 ndim, ndim x int64 dims
//     the data, little-endian, row-major
#pragma once
#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace wr {

struct Tensor {
    enum class DType : uint32_t { F32 = 0, I32 = 1 } dtype = DType::F32;
    std::vector<int64_t> shape;
    std::vector<float> f32;    // when dtype == F32
    std::vector<int32_t> i32;  // when dtype == I32
    int64_t numel() const;
};

class TensorFile {
  public:
    static TensorFile load(const std::string& path);  // errors name the file and the tensor
    void save(const std::string& path) const;          // atomic
    void put(const std::string& name, Tensor t) { tensors_[name] = std::move(t); }
    bool has(const std::string& name) const { return tensors_.count(name) > 0; }
    const Tensor& get(const std::string& name) const;  // throws naming the file and the tensor
    const std::vector<float>& f32(const std::string& name) const;
    const std::vector<int32_t>& i32(const std::string& name) const;
    std::vector<std::string> names() const;

  private:
    std::string path_ = "<memory>";
    std::map<std::string, Tensor> tensors_;
};

}  // namespace wr
