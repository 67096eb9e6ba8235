// fuzz/tensor_file.cpp: fuzz target of the named-tensor file reader (TensorFile::load,
// common/tensor_file.cpp), which the tests read reference fixtures with. An accepted file's tensors
// must hold as many values as their shapes say.
#include "common/tensor_file.h"
#include "fuzz/fuzz.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    const std::string path = wr::fuzz::input_file("tensors.bin", {reinterpret_cast<const char*>(data), size});
    wr::fuzz::accepts([&] {
        const wr::TensorFile file = wr::TensorFile::load(path);
        for (const std::string& name : file.names()) {
            const wr::Tensor& t = file.get(name);
            const size_t values = t.dtype == wr::Tensor::DType::F32 ? t.f32.size() : t.i32.size();
            FUZZ_CHECK(t.shape.size() <= 8 && (int64_t)values == t.numel());
        }
    });
    return 0;
}
