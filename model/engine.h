// model/engine.h: where a program's model runs, the CPU or the GPU, behind one small interface,
// so that train_mlm, finetune and distill each write their loop once. The host BertModel always
// holds the weights that checkpoints are written from; a GPU engine keeps its own copy (fp32
// master weights, AdamW moments) on the device and copies them back before a save (sync_to_host).
//
//   check_device_flags(device, precision)   the flag values: "cpu" | "cuda" | "auto",
//                                           "auto" | "bf16" | "fp32"
//   DeviceOptions                           the flags --device, --precision, --threads, --cpu-isa
//   check_device(device, precision)         the same, and --device cuda where it cannot run: an
//                                           error, to be called before anything is read or written
//   make_engine(device, precision, model, optimizer)
//                                           "auto": the GPU when this build has CUDA and one is
//                                           usable, else the CPU after saying once why
//
// The programs are .cu files: nvcc compiles them when it is on PATH (the CUDA engine is inside,
// behind __CUDACC__), g++ compiles them as C++ otherwise (CPU engine only).
#pragma once
#include <omp.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "common/cpu_isa.h"
#include "common/distributed.h"
#include "common/profile.h"
#include "common/util.h"
#include "model/bert.h"
#include "model/training.h"
#ifdef __CUDACC__
#include "kernels/cuda_common.cuh"
#include "kernels/cuda_profile.cuh"
#include "kernels/nccl.cuh"
#include "model/bert_cuda.cuh"
#endif

namespace wr {

// What the training loops ask of the model, on either device. The forward/backward pairs are
// BertModel's; the batch's arrays are host arrays. A training step is
//   zero_grads; (train_forward_* ; backward_*) per micro-batch; [average_grads]; step
// and step() returns the step's StepResults: the optimizer's StepInfo and each training forward's
// result, read on the GPU in one copy at the end of the step rather than one wait per forward.
// forward_mlm / forward_classify return their result at once (evaluation, prediction).
struct Engine {
    virtual ~Engine() = default;
    virtual const char* name() const = 0;  // "cpu (fp32)", "cuda (NVIDIA H100 80GB HBM3, bf16)"
    virtual bool on_gpu() const { return false; }  // the host is free while a step runs
    virtual MlmResult forward_mlm(const MlmInputs& in, bool train, uint64_t seed) = 0;
    virtual void backward_mlm() = 0;
    virtual ClsResult forward_classify(const ClsInputs& in, bool train, uint64_t seed) = 0;
    virtual void backward_classify() = 0;
    // Training forwards (dropout on, masks from `seed`): their results come with step().
    virtual void train_forward_mlm(const MlmInputs& in, uint64_t seed) = 0;
    virtual void train_forward_classify(const ClsInputs& in, uint64_t seed) = 0;
    virtual std::vector<float> cls_logits() = 0;  // [B,K] of the last forward_classify
    // forward_classify, then its logits [B,K] on the host (valid until the next classify).
    const float* classify(const ClsInputs& in, bool train, uint64_t seed, ClsResult& result) {
        result = forward_classify(in, train, seed);
        logits_ = cls_logits();
        return logits_.data();
    }
    virtual void zero_grads() = 0;
    virtual void average_grads(int micro_batches) = 0;  // grads /= micro_batches
    // Data-parallel (common/distributed.h): every rank's gradients summed, on every rank (MPI on
    // the CPU, NCCL between GPUs). Each rank scaled its part by its share of the global batch
    // (the inputs' grad_scale), so the sum is the global batch's gradient. A world of one: nothing.
    virtual void all_reduce_grads() = 0;
    virtual StepResults step(Optimizer& optimizer) = 0;  // counts the step unless skipped
    virtual void sync_to_host(Optimizer& optimizer) {}  // weights and AdamW moments into the host model and optimizer

  private:
    std::vector<float> logits_;  // classify's
};

// --precision on the CPU: "auto" is bf16 where the CPU has AMX (the measured choice: docs/decisions.md),
// else fp32.
inline MatmulPrecision cpu_precision(const std::string& precision) {
    if (precision == "auto") return cpu_isa() >= CpuIsa::amx ? MatmulPrecision::bf16 : MatmulPrecision::fp32;
    return precision == "bf16" ? MatmulPrecision::bf16 : MatmulPrecision::fp32;
}

struct CpuEngine : Engine {
    BertModel& model;
    std::string label;
    int last_rows = 0;  // B of the last forward_classify
    StepResults pending;  // the training forwards' results since the last step
    CpuEngine(BertModel& m, MatmulPrecision precision) : model(m) {
        model.matmul_precision = precision;
        label = std::string("cpu (") + (precision == MatmulPrecision::bf16 ? "bf16" : "fp32") + ", " +
                std::to_string(omp_get_max_threads()) + " threads, " + cpu_isa_name() + ": " + gemm_kernel_name(precision) + ")";
    }
    const char* name() const override { return label.c_str(); }
    MlmResult forward_mlm(const MlmInputs& in, bool train, uint64_t seed) override { return model.forward_mlm(in, train, seed); }
    void backward_mlm() override { model.backward_mlm(); }
    ClsResult forward_classify(const ClsInputs& in, bool train, uint64_t seed) override {
        last_rows = in.B;
        return model.forward_classify(in, train, seed);
    }
    void backward_classify() override { model.backward_classify(); }
    void train_forward_mlm(const MlmInputs& in, uint64_t seed) override { pending.mlm.push_back(forward_mlm(in, true, seed)); }
    void train_forward_classify(const ClsInputs& in, uint64_t seed) override {
        pending.cls.push_back(forward_classify(in, true, seed));
    }
    std::vector<float> cls_logits() override {
        const float* logits = model.cls_logits();
        return std::vector<float>(logits, logits + (int64_t)last_rows * model.config.num_labels);
    }
    void zero_grads() override { model.zero_grads(); }
    void average_grads(int micro_batches) override {
        for (float& g : model.grads) g /= (float)micro_batches;
    }
    void all_reduce_grads() override { all_reduce_sum(model.grads.data(), (int64_t)model.grads.size()); }
    StepResults step(Optimizer& optimizer) override {
        StepResults results = std::move(pending);
        pending = StepResults();
        results.info = optimizer.step(model.params.data(), model.grads.data());
        return results;
    }
};

#ifdef __CUDACC__
struct CudaEngine : Engine {
    BertModel& host;
    cuda::BertModelCuda gpu;
    std::string label;
    // The weights from the host model; the AdamW moments from `optimizer` (null: zeros, for a
    // model that only runs forward passes).
    CudaEngine(BertModel& h, const Optimizer* optimizer, cuda::Precision precision) : host(h), gpu(h.config, precision) {
        gpu.set_params(host.params.data());
        if (optimizer) gpu.set_moments(optimizer->m.data(), optimizer->v.data());
        label = "cuda (" + cuda::device_name() + ", " + cuda::precision_name(precision) + ")";
    }
    const char* name() const override { return label.c_str(); }
    bool on_gpu() const override { return true; }
    MlmResult forward_mlm(const MlmInputs& in, bool train, uint64_t seed) override {
        refuse_teacher(in);
        return gpu.forward_mlm(in, train, seed);
    }
    void backward_mlm() override { gpu.backward_mlm(); }
    ClsResult forward_classify(const ClsInputs& in, bool train, uint64_t seed) override { return gpu.forward_classify(in, train, seed); }
    void backward_classify() override { gpu.backward_classify(); }
    void train_forward_mlm(const MlmInputs& in, uint64_t seed) override {
        refuse_teacher(in);
        gpu.train_forward_mlm(in, seed);
    }
    void train_forward_classify(const ClsInputs& in, uint64_t seed) override { gpu.train_forward_classify(in, seed); }
    std::vector<float> cls_logits() override { return gpu.cls_logits(); }
    void zero_grads() override { gpu.zero_grads(); }
    void average_grads(int micro_batches) override { gpu.average_grads(micro_batches); }
    void all_reduce_grads() override { gpu.all_reduce_grads(); }
    StepResults step(Optimizer& optimizer) override {
        StepResults results = gpu.optimizer_step(optimizer);
        if (!results.info.skipped) optimizer.steps_done++;
        return results;
    }
    void sync_to_host(Optimizer& optimizer) override {
        gpu.get_params(host.params.data());
        gpu.get_moments(optimizer.m.data(), optimizer.v.data());
    }
    static void refuse_teacher(const MlmInputs& in) {
        if (in.teacher_ids)  // distill refuses --device cuda with --mlm before this; a guard for other callers
            throw Error("MLM-logit distillation (the top-k soft cross-entropy) has no CUDA kernel yet: run it with --device cpu");
    }
};
#endif

// Data-parallel: every rank must train where the others do (--device auto could find a GPU on
// some machines and not on others; NCCL and MPI ranks cannot sum together). A collective call.
inline void require_same_device_on_every_rank(const Engine& engine) {
    if (world().size == 1) return;
    int64_t on_gpu = engine.on_gpu() ? 1 : 0;
    all_reduce_sum(&on_gpu, 1);
    if (on_gpu != 0 && on_gpu != world().size)
        throw Error("<command line>: flag --device: " + std::to_string(on_gpu) + " of " + std::to_string(world().size) +
                    " ranks found a GPU, the others train on the CPU: give every rank the same device (--device cpu or cuda)");
}

// The values of --device and --precision (at parse time).
inline void check_device_flags(const std::string& device, const std::string& precision) {
    if (device != "cpu" && device != "cuda" && device != "auto")
        throw Error("<command line>: flag --device: '" + device + "' is not one of: cpu, cuda, auto");
    if (precision != "auto" && precision != "bf16" && precision != "fp32")
        throw Error("<command line>: flag --precision: '" + precision + "' is not one of: auto, bf16, fp32");
}

// The flag values, and --device cuda where it cannot run: an error that says why (no CUDA in the
// build, no driver, no device), to be called before anything is read or written.
inline void check_device(const std::string& device, const std::string& precision) {
    check_device_flags(device, precision);
#ifdef __CUDACC__
    if (device == "cuda" && !cuda::device_available())
        throw Error("<command line>: flag --device cuda: " + cuda::device_unavailable_reason());
#else
    if (device == "cuda") throw Error("<command line>: flag --device cuda: this build has no CUDA (nvcc was not found by make)");
#endif
}

// --device, --precision, --threads, --cpu-isa and --profile-steps, declared once for every
// program. `device_help` replaces the usual help where a mode differs (distill --mlm is CPU only).
struct DeviceOptions {
    std::string device = "auto", precision = "auto", cpu_isa = "auto", profile_steps;
    int threads = 0;  // 0: all cores

    void add_flags(Flags& f, const char* device_help = "cpu, cuda, or auto (cuda when this build has CUDA and a GPU is present)") {
        f.add("device", &device, device_help);
        f.add("precision", &precision,
              "bf16 (mixed: bf16 matmul operands, fp32 weights and sums), fp32 (exact), or auto: bf16 on a GPU and on a "
              "CPU with AMX, else fp32");
        f.add("threads", &threads, "CPU threads (0: all cores)");
        f.add("cpu-isa", &cpu_isa, "CPU kernels: auto (the best this CPU runs) or one of generic, avx2, avx512, avx512bf16, amx");
        f.add("profile-steps", &profile_steps,
              "GPU: capture only steps FIRST:LAST under a profiler (nsys --capture-range=cudaProfilerApi); '' for all");
    }
    void check_flags() const {  // at parse time
        check_device_flags(device, precision);
        profile::parse_step_window(profile_steps);
    }
    // Before anything is read or written: check_device, the CPU kernels, the thread count.
    void apply() const {
        check_device(device, precision);
        if (cpu_isa == "auto") wr::cpu_isa();  // the best, or what WR_CPU_ISA names (an error if it cannot run)
        else if (!set_cpu_isa(cpu_isa))
            throw Error("<command line>: flag --cpu-isa: '" + cpu_isa + "': this CPU runs at most '" +
                        cpu_isa_name(cpu_isa_best()) + "'");
        if (threads > 0) omp_set_num_threads(threads);
        else if (world().local_size > 1)  // data-parallel ranks on one machine share its cores
            omp_set_num_threads(std::max(1, omp_get_num_procs() / world().local_size));
        const auto [first, last] = profile::parse_step_window(profile_steps);
        profile::set_step_window(first, last);
    }
};

// The engine --device asks for, over `model` (which it keeps a reference to). "auto" takes the
// GPU when this build has CUDA and one is usable, and otherwise prints to `say`, once per program,
// "no GPU (<reason>): <doing> on the CPU". `optimizer`: where the GPU takes its AdamW moments
// from (null: none, a model that only evaluates or predicts).
inline std::unique_ptr<Engine> make_engine(const std::string& device, const std::string& precision, BertModel& model,
                                           const Optimizer* optimizer, const char* doing = "training", std::FILE* say = stdout) {
#ifdef __CUDACC__
    if (device == "cuda" || (device == "auto" && cuda::device_available())) {
        cuda::install_cuda_profiler();  // NVTX ranges and the --profile-steps window
        if (world().size > 1) WR_CUDA_CHECK(cudaSetDevice(cuda::device_for_local_rank()));  // one GPU per rank
        return std::make_unique<CudaEngine>(model, optimizer,
                                            cuda::parse_precision(precision == "auto" ? "bf16" : precision, "<command line>: flag --precision"));
    }
    static bool said = false;  // once per program, however many engines it makes
    if (device == "auto" && !said) std::fprintf(say, "no GPU (%s): %s on the CPU\n", cuda::device_unavailable_reason().c_str(), doing);
    said = true;
#endif
    return std::make_unique<CpuEngine>(model, cpu_precision(precision));
}

}  // namespace wr
