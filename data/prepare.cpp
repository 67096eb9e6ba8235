// data/prepare.cpp: the `prepare` tool, text in, the project's binary files out.
//
//   prepare vocab      text files -> vocab.txt (WordPiece training, data/vocab_trainer.cpp)
//   prepare mlm        text files -> token shards train_000.bin ... val_000.bin (MLM pretraining)
//   prepare cls        TSV / CSV / JSON lines with text and label columns -> example shard
//   prepare unlabeled  text lines (or table columns) -> unlabeled example shard (transfer set)
//   prepare default    the built-in corpus (data/synth.cpp) -> vocab, shards, sentiment task
//   prepare overlap    several corpora -> pairwise overlap of their top-K words (data/vocab_overlap.h)
//
// Text files may be gzip-compressed. Long inputs print a progress line (percent, MB/s) and every
// command ends with a summary: documents or examples, tokens, [UNK] rate, length percentiles and
// the files written. Formats: docs/formats.md.
#include <omp.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <functional>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <utility>

#include "common/flags.h"
#include "common/util.h"
#include "data/shards.h"
#include "data/synth.h"
#include "data/table_reader.h"
#include "data/text_reader.h"
#include "data/tokenizer.h"
#include "data/vocab_overlap.h"
#include "data/vocab_trainer.h"

using namespace wr;

namespace {

// ---------------------------------------------------------------------------------------------
// Progress line and summary statistics

// Prints "\r  LABEL  45.2%  12.3 MB/s" on stderr at most twice a second, when stderr is a
// terminal. Bytes are file bytes (compressed bytes for .gz inputs).
class Progress {
  public:
    Progress(std::string label, int64_t total_bytes) : label_(std::move(label)), total_(total_bytes), start_(now_seconds()) {}
    void update(int64_t done_bytes) {
        const double now = now_seconds();
        if (now - last_ < 0.5 || !isatty(STDERR_FILENO)) return;
        last_ = now;
        std::fprintf(stderr, "\r  %s  %5.1f%%  %6.1f MB/s ", label_.c_str(), 100.0 * done_bytes / std::max<int64_t>(total_, 1),
                     done_bytes / 1e6 / std::max(now - start_, 1e-9));
        std::fflush(stderr);
        shown_ = true;
    }
    void done() {
        if (shown_) std::fprintf(stderr, "\r%*s\r", 60, "");
    }
    double seconds() const { return now_seconds() - start_; }

  private:
    std::string label_;
    int64_t total_;
    double start_, last_ = 0;
    bool shown_ = false;
};

// Lengths (in tokens) of documents or examples, and the [UNK] count, for the summary.
struct LengthStats {
    std::vector<int64_t> lengths;
    int64_t tokens = 0, unknown = 0;

    void add(const std::vector<int32_t>& ids, int unk_id) {
        lengths.push_back((int64_t)ids.size());
        tokens += (int64_t)ids.size();
        unknown += std::count(ids.begin(), ids.end(), unk_id);
    }
    std::string describe(const char* unit) {
        if (lengths.empty()) return std::string("0 ") + unit;
        std::sort(lengths.begin(), lengths.end());
        auto pct = [this](double p) { return lengths[std::min(lengths.size() - 1, (size_t)(p * lengths.size()))]; };
        const std::string one(unit, std::strlen(unit) - 1);  // "documents" -> "document"
        char buf[300];
        std::snprintf(buf, sizeof buf, "%zu %s, %lld tokens, [UNK] %.4f%%, tokens per %s p50 %lld p90 %lld p99 %lld max %lld",
                      lengths.size(), unit, (long long)tokens, 100.0 * unknown / std::max<int64_t>(tokens, 1),
                      one.c_str(), (long long)pct(0.5), (long long)pct(0.9), (long long)pct(0.99), (long long)lengths.back());
        return buf;
    }
};

int64_t total_size(const std::vector<std::string>& files) {
    int64_t n = 0;
    for (const std::string& f : files) n += LineReader(f).file_size();
    return n;
}

void set_threads(int threads) {
    if (threads > 0) omp_set_num_threads(threads);
}

// ---------------------------------------------------------------------------------------------
// Documents from text files: separated by blank lines, or one per line. A document's lines are
// joined with '\n' (which normalization turns into a space).

class DocumentReader {
  public:
    DocumentReader(std::vector<std::string> files, bool one_per_line) : files_(std::move(files)), one_per_line_(one_per_line) {
        total_bytes_ = total_size(files_);
    }

    // Fills `batch` with up to about `max_bytes` of documents; false when nothing is left.
    bool next_batch(std::vector<std::string>& batch, size_t max_bytes = 16 << 20) {
        batch.clear();
        size_t bytes = 0;
        std::string doc;
        while (bytes < max_bytes && next(doc)) {
            bytes += doc.size();
            batch.push_back(std::move(doc));
        }
        return !batch.empty();
    }
    int64_t bytes_done() const { return done_before_ + (reader_ ? reader_->compressed_offset() : 0); }
    int64_t total_bytes() const { return total_bytes_; }

  private:
    bool next(std::string& doc) {
        doc.clear();
        std::string line;
        while (true) {
            if (!reader_) {
                if (file_index_ == files_.size()) return !doc.empty();
                reader_ = std::make_unique<LineReader>(files_[file_index_++]);
            }
            if (!reader_->next(line)) {  // end of a file also ends its last document
                done_before_ += reader_->file_size();
                reader_.reset();
                if (!doc.empty()) return true;
                continue;
            }
            const bool blank = line.find_first_not_of(" \t") == std::string::npos;
            if (one_per_line_) {
                if (blank) continue;
                doc = std::move(line);
                return true;
            }
            if (blank) {
                if (!doc.empty()) return true;
                continue;
            }
            if (!doc.empty()) doc += '\n';
            doc += line;
        }
    }

    std::vector<std::string> files_;
    bool one_per_line_;
    size_t file_index_ = 0;
    std::unique_ptr<LineReader> reader_;
    int64_t done_before_ = 0, total_bytes_ = 0;
};

// ---------------------------------------------------------------------------------------------
// prepare vocab

struct VocabJob {
    std::vector<std::string> inputs, heldout;
    std::string out;
    VocabTrainOptions options;
};

// [UNK] rate of `tokenizer` over the documents of `files`.
void report_unknown_rate(const Tokenizer& tokenizer, const std::vector<std::string>& files, bool one_per_line) {
    DocumentReader reader(files, one_per_line);
    std::vector<std::string> batch;
    LengthStats stats;
    while (reader.next_batch(batch))
        for (const std::vector<int32_t>& ids : tokenizer.encode_batch(batch)) stats.add(ids, tokenizer.unk_id);
    std::printf("held-out text: %s\n", stats.describe("documents").c_str());
}

std::vector<std::string> train_vocab_from_texts(const std::function<bool(std::vector<std::string>&)>& next_batch,
                                                const std::function<void()>& on_batch, const VocabTrainOptions& options) {
    WordCounter counter;
    std::vector<std::string> batch;
    const double t0 = now_seconds();
    while (next_batch(batch)) {
        counter.add_batch(batch, options.threads);
        on_batch();
    }
    const double t1 = now_seconds();
    std::vector<std::string> vocab = train_wordpiece_vocab(counter.counts(), options);
    std::printf("vocab: counted %llu words (%zu distinct) in %.1f s, trained %zu tokens in %.1f s\n",
                (unsigned long long)counter.total_words(), counter.counts().size(), t1 - t0, vocab.size(), now_seconds() - t1);
    return vocab;
}

// The temporary files a killed earlier run left in `dir` (NAME.tmp.PID of an ended process) are
// removed before this run writes there.
void remove_leftovers(const std::string& dir) {
    if (const int n = remove_stale_temporaries(dir))
        std::printf("%s: removed %d temporary file%s left by a killed run\n", dir.empty() ? "." : dir.c_str(), n, n == 1 ? "" : "s");
}
std::string folder_of(const std::string& file) {
    const size_t slash = file.rfind('/');
    return slash == std::string::npos ? "" : file.substr(0, slash);
}

int run_vocab(int argc, char** argv) {
    VocabJob job;
    job.out = "vocab.txt";
    Flags flags("prepare vocab", "train a WordPiece vocabulary from text files (plain or .gz)");
    flags.add("input", &job.inputs, "text files or globs, comma-separated");
    flags.add("out", &job.out, "vocabulary file to write");
    flags.add("size", &job.options.vocab_size, "vocabulary size, special tokens included");
    flags.add("min-freq", &job.options.min_frequency, "minimum frequency of a merged pair");
    flags.add("limit-alphabet", &job.options.limit_alphabet, "keep at most this many initial characters");
    flags.add("heldout", &job.heldout, "optional held-out text files: report the [UNK] rate on them");
    flags.add("threads", &job.options.threads, "threads (0 = all cores)");
    bool overwrite = false;
    flags.add("overwrite", &overwrite, "replace an existing --out (shards and checkpoints made with it become unusable)");
    flags.parse(argc, argv, 2);
    if (job.inputs.empty()) throw Error("<command line>: prepare vocab needs --input FILES");
    std::vector<std::string> read = expand_globs(job.inputs);
    if (!job.heldout.empty())
        for (const std::string& h : expand_globs(job.heldout)) read.push_back(h);
    check_output_file(job.out, read, overwrite);
    remove_leftovers(folder_of(job.out));
    set_threads(job.options.threads);
    DocumentReader reader(expand_globs(job.inputs), /*one_per_line=*/true);
    Progress progress("counting words", reader.total_bytes());
    const auto vocab = train_vocab_from_texts([&](std::vector<std::string>& b) { return reader.next_batch(b); },
                                              [&]() { progress.update(reader.bytes_done()); }, job.options);
    progress.done();
    write_vocab(job.out, vocab);
    std::printf("wrote %s (%zu tokens)\n", job.out.c_str(), vocab.size());
    if (!job.heldout.empty()) report_unknown_rate(Tokenizer::load(job.out), expand_globs(job.heldout), false);
    return 0;
}

// ---------------------------------------------------------------------------------------------
// prepare mlm

// The shards of one split (train or val): SPLIT_000.bin, SPLIT_001.bin, ..., each at most
// `shard_tokens` tokens unless a single document is longer.
class ShardSeries {
  public:
    ShardSeries(std::string dir, std::string split, const Tokenizer& tokenizer, int64_t shard_tokens)
        : dir_(std::move(dir)), split_(std::move(split)), tokenizer_(tokenizer), shard_tokens_(shard_tokens) {}

    void add(const std::vector<int32_t>& ids) {
        if (ids.empty()) return;
        if (writer_ && writer_->token_count() > 0 && writer_->token_count() + (int64_t)ids.size() > shard_tokens_) close();
        if (!writer_) {
            char name[64];
            std::snprintf(name, sizeof name, "/%s_%03zu.bin", split_.c_str(), paths_.size());
            paths_.push_back(dir_ + name);
            writer_ = std::make_unique<TokenShardWriter>(paths_.back(), tokenizer_.vocab_size(), tokenizer_.fingerprint());
        }
        writer_->add_document(ids.data(), (int64_t)ids.size());
        stats.add(ids, tokenizer_.unk_id);
    }
    void close() {
        if (writer_) writer_->finish();
        writer_.reset();
    }
    const std::vector<std::string>& paths() const { return paths_; }
    LengthStats stats;

  private:
    std::string dir_, split_;
    const Tokenizer& tokenizer_;
    int64_t shard_tokens_;
    std::unique_ptr<TokenShardWriter> writer_;
    std::vector<std::string> paths_;
};

struct MlmJob {
    std::string out_dir;
    double val_fraction = 0.01;
    int64_t shard_tokens = 100'000'000;
    uint64_t seed = 1;
};

// Document i goes to validation when a hash of (seed, i) falls below val_fraction: a fixed,
// reproducible split by document that needs no second pass over the data.
bool is_validation_doc(uint64_t seed, int64_t index, double fraction) {
    uint64_t h = fnv1a64(&index, sizeof index, fnv1a64(&seed, sizeof seed));
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdULL;
    h ^= h >> 33;
    return (double)(h >> 11) / (double)(1ULL << 53) < fraction;
}

// Tokenizes batches of documents in parallel and routes each to the train or val shards.
// `force_val` sends every document of this source to validation (for --val-input).
void tokenize_documents(const Tokenizer& tokenizer, const std::function<bool(std::vector<std::string>&)>& next_batch,
                        const std::function<void()>& on_batch, ShardSeries& train, ShardSeries& val, const MlmJob& job,
                        bool force_val, int64_t& doc_index) {
    std::vector<std::string> batch;
    while (next_batch(batch)) {
        const auto encoded = tokenizer.encode_batch(batch);
        for (const auto& ids : encoded) {
            const bool to_val = is_validation_doc(job.seed, doc_index++, job.val_fraction) || force_val;
            (to_val ? val : train).add(ids);
        }
        on_batch();
    }
}

void print_mlm_summary(ShardSeries& train, ShardSeries& val, double seconds) {
    train.close();
    val.close();
    std::printf("train: %s\n", train.stats.describe("documents").c_str());
    std::printf("val:   %s\n", val.stats.describe("documents").c_str());
    std::printf("wrote %zu train and %zu val shards in %.1f s:", train.paths().size(), val.paths().size(), seconds);
    for (const auto* series : {&train, &val})
        for (const std::string& p : series->paths()) std::printf(" %s", p.c_str());
    std::printf("\n");
}

// Shards of an earlier run would be read together with the new ones by a trainer globbing
// train_*.bin, so they are removed only when --overwrite says so; otherwise it is an error.
void clear_old_shards(const std::string& dir, bool overwrite) {
    std::vector<std::string> old;
    for (const char* pattern : {"/train_*.bin", "/val_*.bin"})
        try {
            for (std::string& p : expand_globs({dir + pattern})) old.push_back(std::move(p));
        } catch (const Error&) {  // the pattern matched nothing
        }
    if (old.empty()) return;
    if (!overwrite)
        throw Error(dir + ": already holds shards from an earlier run (" + old[0] + ", ...); pass --overwrite to replace them");
    for (const std::string& p : old) std::remove(p.c_str());
    std::printf("removed %zu shards of an earlier run from %s\n", old.size(), dir.c_str());
}

int run_mlm(int argc, char** argv) {
    MlmJob job;
    std::vector<std::string> inputs, val_inputs;
    std::string vocab_path;
    bool one_per_line = false, overwrite = false;
    int threads = 0;
    Flags flags("prepare mlm", "text files (plain or .gz) -> MLM token shards train_NNN.bin / val_NNN.bin");
    flags.add("vocab", &vocab_path, "vocabulary (vocab.txt)");
    flags.add("input", &inputs, "text files or globs, comma-separated");
    flags.add("val-input", &val_inputs, "separate validation text files (then --val-fraction is not used)");
    flags.add("out", &job.out_dir, "output folder");
    flags.add("one-per-line", &one_per_line, "each non-blank line is a document (default: blank lines separate documents)");
    flags.add("val-fraction", &job.val_fraction, "fraction of documents held out for validation");
    flags.add("shard-tokens", &job.shard_tokens, "at most this many tokens per shard");
    flags.add("seed", &job.seed, "seed of the train/validation split");
    flags.add("overwrite", &overwrite, "replace the shards an earlier run left in --out (default: refuse)");
    flags.add("threads", &threads, "threads (0 = all cores)");
    flags.parse(argc, argv, 2);
    if (vocab_path.empty() || inputs.empty() || job.out_dir.empty())
        throw Error("<command line>: prepare mlm needs --vocab, --input and --out (see prepare mlm -h)");
    set_threads(threads);
    const Tokenizer tokenizer = Tokenizer::load(vocab_path);
    make_dirs(job.out_dir);
    remove_leftovers(job.out_dir);
    if (!(job.val_fraction >= 0 && job.val_fraction <= 1)) throw Error("<command line>: flag --val-fraction: must be in [0, 1]");
    if (job.shard_tokens < 1) throw Error("<command line>: flag --shard-tokens: must be positive");
    if (!val_inputs.empty()) job.val_fraction = 0;
    const std::vector<std::string> train_files = expand_globs(inputs);  // every input checked before old shards go
    const std::vector<std::string> val_files = val_inputs.empty() ? std::vector<std::string>{} : expand_globs(val_inputs);
    clear_old_shards(job.out_dir, overwrite);
    ShardSeries train(job.out_dir, "train", tokenizer, job.shard_tokens), val(job.out_dir, "val", tokenizer, job.shard_tokens);
    int64_t doc_index = 0;
    const double t0 = now_seconds();
    for (int pass = 0; pass < (val_inputs.empty() ? 1 : 2); pass++) {
        const std::vector<std::string>& files = pass == 0 ? train_files : val_files;
        DocumentReader reader(files, one_per_line);
        Progress progress(pass == 0 ? "tokenizing" : "tokenizing validation", reader.total_bytes());
        const int64_t docs_before = doc_index;
        tokenize_documents(tokenizer, [&](std::vector<std::string>& b) { return reader.next_batch(b); },
                           [&]() { progress.update(reader.bytes_done()); }, train, val, job, pass == 1, doc_index);
        progress.done();
        if (doc_index == docs_before)
            throw Error(files[0] + (files.size() > 1 ? " (and the other " + std::to_string(files.size() - 1) + " files)" : "") +
                        ": no documents found in " + (pass == 0 ? "--input" : "--val-input"));
    }
    print_mlm_summary(train, val, now_seconds() - t0);
    return 0;
}

// ---------------------------------------------------------------------------------------------
// prepare cls / prepare unlabeled

struct RawExample {
    std::string source;  // "file:line", for error messages
    std::string a, b, label;
};

// Label names in id order: given (--labels / --labels-from) or the distinct labels of the data,
// sorted (numerically when every label is a number, so "0","1","2" get ids 0, 1, 2).
// A finite number written in full (no trailing text, no overflow), or nothing.
bool parse_finite(const std::string& s, double& value) {
    char* end = nullptr;
    errno = 0;
    value = std::strtod(s.c_str(), &end);
    return !s.empty() && *end == '\0' && errno == 0 && std::isfinite(value);
}

std::vector<std::string> label_names_of(const std::vector<RawExample>& raw) {
    std::vector<std::string> names;
    for (const RawExample& r : raw) names.push_back(r.label);
    std::sort(names.begin(), names.end());
    names.erase(std::unique(names.begin(), names.end()), names.end());
    std::vector<std::pair<double, std::string>> numbers;
    double value;
    for (const std::string& s : names)
        if (parse_finite(s, value)) numbers.emplace_back(value, s);
    if (numbers.size() < names.size()) return names;  // not all numeric: byte order
    std::stable_sort(numbers.begin(), numbers.end(), [](const auto& x, const auto& y) { return x.first < y.first; });
    for (size_t i = 0; i < names.size(); i++) names[i] = numbers[i].second;
    return names;
}

// Tokenizes in parallel and attaches labels; errors name the example's file and line.
ExampleSet build_examples(const Tokenizer& tokenizer, const std::vector<RawExample>& raw, LabelKind kind,
                          std::vector<std::string> label_names, int max_len, const std::string& label_origin) {
    ExampleSet set;
    set.label_kind = kind;
    set.label_names = std::move(label_names);
    set.vocab_size = tokenizer.vocab_size();
    set.vocab_fingerprint = tokenizer.fingerprint();
    set.max_len = max_len;
    set.examples.resize(raw.size());
    std::map<std::string, int> label_ids;
    for (size_t i = 0; i < set.label_names.size(); i++) label_ids[set.label_names[i]] = (int)i;
    for (size_t i = 0; i < raw.size(); i++) {  // labels first, serially, so the first bad line is the one reported
        Example& e = set.examples[i];
        if (kind == LabelKind::Class) {
            auto it = label_ids.find(raw[i].label);
            if (it == label_ids.end())
                throw Error(raw[i].source + ": label '" + raw[i].label + "' is not one of the " + std::to_string(label_ids.size()) +
                            " labels of " + label_origin);
            e.label = it->second;
        } else if (kind == LabelKind::Regression) {
            double value;
            if (!parse_finite(raw[i].label, value) || !std::isfinite((float)value))
                throw Error(raw[i].source + ": regression target '" + raw[i].label + "' is not a finite number");
            e.value = (float)value;
        }
    }
#pragma omp parallel for schedule(dynamic, 64)
    for (size_t i = 0; i < raw.size(); i++) {
        Encoding enc = raw[i].b.empty() ? tokenizer.encode(raw[i].a, max_len) : tokenizer.encode_pair(raw[i].a, raw[i].b, max_len);
        set.examples[i].ids = std::move(enc.ids);
        set.examples[i].second_start = enc.second_start;
    }
    return set;
}

void print_example_summary(const ExampleSet& set, const Tokenizer& tokenizer, const std::string& out, double seconds) {
    LengthStats stats;
    int64_t at_max = 0;
    std::vector<int64_t> per_label(set.label_names.size());
    for (const Example& e : set.examples) {
        stats.add(e.ids, tokenizer.unk_id);
        at_max += (int)e.ids.size() == set.max_len;
        if (set.label_kind == LabelKind::Class) per_label[e.label]++;
    }
    std::printf("%s\n", stats.describe("examples").c_str());
    std::printf("%lld examples reached --max-len %d (truncated or exactly that long)\n", (long long)at_max, set.max_len);
    if (set.label_kind == LabelKind::Class) {
        std::printf("labels:");
        for (size_t i = 0; i < set.label_names.size(); i++) std::printf(" %s=%lld", set.label_names[i].c_str(), (long long)per_label[i]);
        std::printf("\n");
    }
    std::printf("wrote %s in %.1f s\n", out.c_str(), seconds);
}

int run_examples(int argc, char** argv, bool labeled) {
    std::string vocab_path, out, format = "auto", text_col, text_b_col, label_col = "label", labels_from;
    std::vector<std::string> inputs, labels;
    bool regression = false, no_header = false, pairs = false;
    int max_len = 512, threads = 0;
    Flags flags(labeled ? "prepare cls" : "prepare unlabeled",
                labeled ? "a labeled table (TSV, CSV, JSON lines) -> example shard for classification or regression"
                        : "text lines (or the text column(s) of tables) -> unlabeled example shard (a transfer set)");
    flags.add("vocab", &vocab_path, "vocabulary (vocab.txt)");
    flags.add("input", &inputs, "input files or globs, comma-separated (plain or .gz)");
    flags.add("out", &out, "example shard to write");
    flags.add("format", &format, labeled ? "auto (by extension), tsv, csv or jsonl" : "lines (one text per line), auto, tsv, csv or jsonl");
    flags.add("text", &text_col, labeled ? "column (or JSON field) of the text" : "column of the text, for tables");
    flags.add("text-b", &text_b_col, "column of the second text of a pair (optional)");
    if (labeled) {
        flags.add("label", &label_col, "column of the label");
        flags.add("labels-from", &labels_from, "example shard whose label ids to reuse (dev and test sets: pass the train shard)");
        flags.add("labels", &labels, "label names in id order (default: the sorted distinct labels of the input)");
        flags.add("regression", &regression, "the label is a real number (a single regression target)");
    } else {
        flags.add("pairs", &pairs, "with --format lines: a tab separates the two texts of a pair");
    }
    flags.add("no-header", &no_header, "TSV/CSV without a header row: name columns by index 0, 1, ...");
    flags.add("max-len", &max_len, "truncate [CLS] A [SEP] (B [SEP]) to this many tokens (longest first)");
    flags.add("threads", &threads, "threads (0 = all cores)");
    bool overwrite = false;
    flags.add("overwrite", &overwrite, "replace an existing --out");
    if (!labeled) format = "lines";
    flags.parse(argc, argv, 2);
    if (vocab_path.empty() || inputs.empty() || out.empty())
        throw Error(std::string("<command line>: prepare ") + (labeled ? "cls" : "unlabeled") + " needs --vocab, --input and --out");
    if (labeled && text_col.empty()) throw Error("<command line>: prepare cls needs --text COLUMN");
    if (labeled && format == "lines") throw Error("<command line>: flag --format: prepare cls reads tables (tsv, csv, jsonl), not lines");
    if (!labeled && format != "lines" && text_col.empty()) throw Error("<command line>: prepare unlabeled --format " + format + " needs --text COLUMN");
    if (regression && (!labels.empty() || !labels_from.empty()))
        throw Error("<command line>: --regression has a single real-valued target; --labels and --labels-from are for classes");
    for (size_t i = 0; i < labels.size(); i++)
        for (size_t j = 0; j < i; j++)
            if (labels[i] == labels[j]) throw Error("<command line>: flag --labels: '" + labels[i] + "' is given twice");
    if (max_len < 3) throw Error("<command line>: flag --max-len: must be at least 3");
    {
        std::vector<std::string> read = expand_globs(inputs);
        read.push_back(vocab_path);
        if (!labels_from.empty()) read.push_back(labels_from);
        check_output_file(out, read, overwrite);
        remove_leftovers(folder_of(out));
    }
    set_threads(threads);
    const Tokenizer tokenizer = Tokenizer::load(vocab_path);
    const double t0 = now_seconds();

    std::vector<RawExample> raw;
    for (const std::string& path : expand_globs(inputs)) {
        if (format == "lines") {
            LineReader reader(path);
            std::string line;
            while (reader.next(line)) {
                if (line.find_first_not_of(" \t") == std::string::npos) continue;
                RawExample r{path + ":" + std::to_string(reader.line_number()), line, "", ""};
                if (pairs) {
                    const size_t tab = line.find('\t');
                    if (tab == std::string::npos) throw Error(r.source + ": --pairs is set but the line has no tab");
                    r.a = line.substr(0, tab);
                    r.b = line.substr(tab + 1);
                }
                raw.push_back(std::move(r));
            }
            continue;
        }
        std::vector<std::string> columns{text_col};
        if (!text_b_col.empty()) columns.push_back(text_b_col);
        if (labeled) columns.push_back(label_col);
        for (TableRow& row : read_table(path, parse_table_format(format, path), columns, !no_header)) {
            RawExample r{path + ": line " + std::to_string(row.line), std::move(row.values[0]), "", ""};
            if (!text_b_col.empty()) r.b = std::move(row.values[1]);
            if (labeled) r.label = std::move(row.values.back());
            raw.push_back(std::move(r));
        }
    }
    if (raw.empty()) throw Error(inputs[0] + ": no examples found");

    LabelKind kind = !labeled ? LabelKind::None : regression ? LabelKind::Regression : LabelKind::Class;
    std::string origin = "the input";
    if (kind == LabelKind::Regression) labels = {label_col};
    else if (!labels_from.empty()) {
        const ExampleSet reference = read_example_shard_header(labels_from);
        if (reference.label_kind != LabelKind::Class) fail(labels_from, "label_kind", "not a classification shard, cannot lend its labels");
        if (reference.vocab_fingerprint != tokenizer.fingerprint())
            fail(labels_from, "vocab_fingerprint", "the shard was made with another vocabulary than " + vocab_path);
        labels = reference.label_names;
        origin = labels_from;
    } else if (!labels.empty()) {
        origin = "--labels";
    } else if (kind == LabelKind::Class) {
        labels = label_names_of(raw);
    }
    const ExampleSet set = build_examples(tokenizer, raw, kind, labels, max_len, origin);
    write_example_shard(out, set);
    print_example_summary(set, tokenizer, out, now_seconds() - t0);
    return 0;
}

// ---------------------------------------------------------------------------------------------
// prepare default: the built-in corpus, through the same steps as the commands above.

// A batch source that hands out `texts` once (the generated corpus is already in memory).
std::function<bool(std::vector<std::string>&)> in_one_batch(const std::vector<std::string>& texts) {
    return [&texts, given = false](std::vector<std::string>& batch) mutable {
        if (given) return false;
        batch = texts;
        return given = true;
    };
}

int run_default(int argc, char** argv) {
    std::string out = "build/default";
    SynthOptions synth;
    int vocab_size = 4096, max_len = 128;
    Flags flags("prepare default", "generate the built-in corpus and prepare it: vocab, MLM shards, sentiment task, transfer set");
    flags.add("out", &out, "output folder");
    flags.add("seed", &synth.seed, "generator seed");
    flags.add("vocab-size", &vocab_size, "vocabulary size (training stops earlier when merges run out)");
    flags.add("max-len", &max_len, "maximum example length of the sentiment task and the transfer set");
    flags.parse(argc, argv, 2);
    if (max_len < 3) throw Error("<command line>: flag --max-len: must be at least 3");
    const double t0 = now_seconds();
    make_dirs(out + "/mlm");
    clear_old_shards(out + "/mlm", /*overwrite=*/true);  // this folder is the generator's own
    const SynthCorpus corpus = generate_synth_corpus(synth);

    // Vocabulary from all generated text.
    VocabTrainOptions vocab_options;
    vocab_options.vocab_size = vocab_size;
    std::vector<std::string> mlm_text = corpus.mlm_documents;  // topic documents, then review documents
    mlm_text.insert(mlm_text.end(), corpus.review_documents.begin(), corpus.review_documents.end());
    std::vector<std::string> all_text = mlm_text;
    all_text.insert(all_text.end(), corpus.transfer.begin(), corpus.transfer.end());
    for (const SynthLabeled& s : corpus.sentiment_train) all_text.push_back(s.text);
    const auto vocab = train_vocab_from_texts(in_one_batch(all_text), [] {}, vocab_options);
    write_vocab(out + "/vocab.txt", vocab);
    const Tokenizer tokenizer = Tokenizer::load(out + "/vocab.txt");

    // MLM shards, 5% of the documents for validation.
    MlmJob job;
    job.out_dir = out + "/mlm";
    job.val_fraction = 0.05;
    ShardSeries train(job.out_dir, "train", tokenizer, job.shard_tokens), val(job.out_dir, "val", tokenizer, job.shard_tokens);
    int64_t doc_index = 0;
    tokenize_documents(tokenizer, in_one_batch(mlm_text), [] {}, train, val, job, false, doc_index);
    print_mlm_summary(train, val, now_seconds() - t0);

    // Sentiment task and transfer set.
    const std::vector<std::string> sentiment_labels = {"negative", "positive"};
    auto labeled = [&](const std::vector<SynthLabeled>& items, const char* name) {
        std::vector<RawExample> raw;
        for (size_t i = 0; i < items.size(); i++)
            raw.push_back({std::string(name) + ":" + std::to_string(i + 1), items[i].text, "", sentiment_labels.at(items[i].label)});
        const std::string path = out + "/" + name + ".bin";
        const ExampleSet set = build_examples(tokenizer, raw, LabelKind::Class, sentiment_labels, max_len, "the generator");
        write_example_shard(path, set);
        print_example_summary(set, tokenizer, path, now_seconds() - t0);
    };
    labeled(corpus.sentiment_train, "sentiment_train");
    labeled(corpus.sentiment_dev, "sentiment_dev");
    std::vector<RawExample> transfer;
    for (size_t i = 0; i < corpus.transfer.size(); i++) transfer.push_back({"transfer:" + std::to_string(i + 1), corpus.transfer[i], "", ""});
    const ExampleSet set = build_examples(tokenizer, transfer, LabelKind::None, {}, max_len, "");
    write_example_shard(out + "/transfer.bin", set);
    print_example_summary(set, tokenizer, out + "/transfer.bin", now_seconds() - t0);
    return 0;
}

// ---------------------------------------------------------------------------------------------
// prepare overlap: the vocabulary overlap of "Don't Stop Pretraining" (rules: data/vocab_overlap.h)

// "12,345,678"
std::string with_commas(uint64_t n) {
    std::string digits = std::to_string(n), out;
    for (size_t i = 0; i < digits.size(); i++) {
        if (i && (digits.size() - i) % 3 == 0) out += ',';
        out += digits[i];
    }
    return out;
}

std::string overlap_tsv(const std::vector<std::string>& names, const OverlapMatrix& m) {
    std::string t = "corpus";
    for (const std::string& n : names) t += "\t" + n;
    t += "\n";
    char cell[32];
    for (size_t i = 0; i < names.size(); i++) {
        t += names[i];
        for (size_t j = 0; j < names.size(); j++) {
            std::snprintf(cell, sizeof cell, "\t%.2f", m.percent[i][j]);
            t += cell;
        }
        t += "\n";
    }
    return t;
}

int run_overlap(int argc, char** argv) {
    std::vector<std::string> specs;
    std::string out, stop_words = "builtin";
    int64_t top = 10000;
    CorpusLimits limits;
    int threads = 0;
    bool overwrite = false;
    Flags flags("prepare overlap",
                "pairwise overlap of the top-K words of several corpora (lowercased BERT-split words with a letter, 2+ characters, "
                "stop words removed; ties by the word's bytes)");
    flags.add("corpus", &specs,
              "NAME=FILE (text, plain or .gz: one text per non-blank line) or NAME=TABLE:COLUMN (.tsv/.csv/.jsonl, or .gz of one); "
              "FILE may be a quoted glob; repeat the flag (or separate by commas) for each corpus");
    flags.add("top", &top, "K: the most frequent words of each corpus that are compared");
    flags.add("max-bytes", &limits.max_bytes, "read at most about this many bytes of text per corpus (0 = all; the text that reaches it is taken whole)");
    flags.add("max-lines", &limits.max_texts, "read at most this many texts (non-blank lines or table rows) per corpus (0 = all)");
    flags.add("stop-words", &stop_words, "builtin (scikit-learn's English list, 318 words), none, or a file with one word a line");
    flags.add("out", &out, "write the table here too: .json (counts, shared words, percentages) or .tsv (percentages)");
    flags.add("overwrite", &overwrite, "replace an existing --out");
    flags.add("threads", &threads, "threads (0 = all cores)");
    flags.parse(argc, argv, 2);

    std::vector<CorpusSpec> corpora;
    for (const std::string& s : specs) {
        corpora.push_back(parse_corpus_spec(s));
        for (size_t j = 0; j + 1 < corpora.size(); j++)
            if (corpora[j].name == corpora.back().name)
                throw Error("<command line>: flag --corpus: the name '" + corpora.back().name + "' is given twice");
    }
    if (corpora.size() < 2)
        throw Error("<command line>: prepare overlap needs at least two corpora (--corpus NAME=FILE, once each), got " +
                    std::to_string(corpora.size()));
    if (top < 1) throw Error("<command line>: flag --top: must be at least 1, is " + std::to_string(top));
    if (limits.max_bytes < 0) throw Error("<command line>: flag --max-bytes: must be 0 (no bound) or positive");
    if (limits.max_texts < 0) throw Error("<command line>: flag --max-lines: must be 0 (no bound) or positive");
    const bool json = !out.empty() && out.size() >= 5 && out.compare(out.size() - 5, 5, ".json") == 0;
    if (!out.empty() && !json && !(out.size() >= 4 && out.compare(out.size() - 4, 4, ".tsv") == 0))
        throw Error("<command line>: flag --out: '" + out + "' must end in .json or .tsv (the format is chosen by the extension)");
    const std::unordered_set<std::string> stop = load_stop_words(stop_words);
    if (!out.empty()) {
        std::vector<std::string> read;
        for (const CorpusSpec& c : corpora) {
            try {
                for (std::string& f : expand_globs({c.path})) read.push_back(std::move(f));
            } catch (const Error&) {  // reported by count_corpus_words, with the corpus's name
            }
        }
        if (stop_words != "builtin" && stop_words != "none") read.push_back(stop_words);
        check_output_file(out, read, overwrite);
        remove_leftovers(folder_of(out));
    }
    set_threads(threads);
    const double t0 = now_seconds();

    std::vector<CorpusWords> counted;
    std::vector<std::vector<WordCount>> tops;
    std::vector<std::string> names;
    for (const CorpusSpec& c : corpora) {
        counted.push_back(count_corpus_words(c, limits, stop, threads));
        tops.push_back(top_words(counted.back().counts, top));
        names.push_back(c.name);
        const CorpusWords& w = counted.back();
        std::printf("%s: %s texts, %.1f MB, %s words (%s distinct), top %zu%s, %.1f s\n", c.name.c_str(), with_commas(w.texts).c_str(),
                    w.bytes / 1e6, with_commas(w.words).c_str(), with_commas(w.counts.size()).c_str(), tops.back().size(),
                    w.bounded ? " (bounded: the input holds more)" : "", w.seconds);
    }
    const OverlapMatrix m = vocab_overlap(tops);

    std::printf("\nmost frequent words:\n");
    for (size_t i = 0; i < corpora.size(); i++) {
        std::string line;
        for (size_t k = 0; k < std::min<size_t>(10, tops[i].size()); k++) line += (k ? ", " : "") + tops[i][k].word;
        std::printf("  %-*s %s\n", 12, names[i].c_str(), line.c_str());
    }
    for (size_t i = 0; i < corpora.size(); i++)
        if ((int64_t)tops[i].size() < top)
            std::printf("note: %s has only %zu distinct words (fewer than --top %lld): its pairs are over %zu words at most\n",
                        names[i].c_str(), tops[i].size(), (long long)top, tops[i].size());
    size_t width = 7;
    for (const std::string& n : names) width = std::max(width, n.size() + 1);
    std::printf("\noverlap of the top %lld words, %% (shared / the smaller list's size):\n%-*s", (long long)top, (int)width, "");
    for (const std::string& n : names) std::printf("%*s", (int)width, n.c_str());
    std::printf("\n");
    for (size_t i = 0; i < names.size(); i++) {
        std::printf("%-*s", (int)width, names[i].c_str());
        for (size_t j = 0; j < names.size(); j++) std::printf("%*.1f", (int)width, m.percent[i][j]);
        std::printf("\n");
    }

    if (!out.empty()) {
        std::string text;
        if (json) {
            nlohmann::ordered_json j;
            j["top"] = top;
            j["stop_words"] = stop_words;
            j["stop_word_count"] = stop.size();
            j["max_bytes"] = limits.max_bytes;
            j["max_lines"] = limits.max_texts;
            j["corpora"] = nlohmann::ordered_json::array();
            for (size_t i = 0; i < corpora.size(); i++) {
                const CorpusWords& w = counted[i];
                nlohmann::ordered_json c;
                c["name"] = names[i];
                c["path"] = corpora[i].path;
                c["column"] = corpora[i].column;
                c["files"] = w.files;
                c["texts"] = w.texts;
                c["bytes"] = w.bytes;
                c["words"] = w.words;
                c["distinct"] = w.counts.size();
                c["top"] = tops[i].size();
                c["bounded"] = w.bounded;
                c["seconds"] = std::round(w.seconds * 100) / 100;
                std::vector<std::string> head;
                for (size_t k = 0; k < std::min<size_t>(10, tops[i].size()); k++) head.push_back(tops[i][k].word);
                c["most_frequent"] = head;
                j["corpora"].push_back(c);
            }
            j["shared"] = m.shared;
            std::vector<std::vector<double>> rounded = m.percent;
            for (auto& row : rounded)
                for (double& p : row) p = std::round(p * 100) / 100;
            j["percent"] = rounded;
            text = j.dump(2) + "\n";
        } else {
            text = overlap_tsv(names, m);
        }
        make_parent_dirs(out);
        write_file_atomic(out, text);
        std::printf("\nwrote %s\n", out.c_str());
    }
    std::printf("%.1f s\n", now_seconds() - t0);
    return 0;
}

const char* kUsage =
    "prepare: turn text into wellread's binary files\n\n"
    "  prepare vocab      --input FILES --out vocab.txt [--size 30522]\n"
    "  prepare mlm        --vocab V --input FILES --out DIR [--val-input FILES | --val-fraction F]\n"
    "  prepare cls        --vocab V --input FILE --out X.bin --text COL [--text-b COL] --label COL [--labels-from TRAIN.bin]\n"
    "  prepare unlabeled  --vocab V --input FILES --out X.bin [--format lines|tsv|csv|jsonl --text COL]\n"
    "  prepare default    [--out build/default]\n"
    "  prepare overlap    --corpus NAME=FILE --corpus NAME=TABLE:COLUMN ... [--top 10000] [--max-bytes N] [--out X.json|X.tsv]\n\n"
    "prepare COMMAND -h lists a command's flags with their defaults.\n";

}  // namespace

int main(int argc, char** argv) {
    if (argc < 2 || !std::strcmp(argv[1], "-h") || !std::strcmp(argv[1], "--help")) {
        std::fputs(kUsage, argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    const std::string command = argv[1];
    try {
        if (command == "vocab") return run_vocab(argc, argv);
        if (command == "mlm") return run_mlm(argc, argv);
        if (command == "cls") return run_examples(argc, argv, true);
        if (command == "unlabeled") return run_examples(argc, argv, false);
        if (command == "default") return run_default(argc, argv);
        if (command == "overlap") return run_overlap(argc, argv);
        std::fprintf(stderr, "prepare: unknown command '%s'\n\n%s", command.c_str(), kUsage);
        return 2;
    } catch (const Error& e) {
        std::fprintf(stderr, "\nprepare %s: error: %s\n", command.c_str(), e.what());
        return 1;
    } catch (const std::exception& e) {  // not expected: every known problem is a wr::Error
        std::fprintf(stderr, "\nprepare %s: internal error: %s\n", command.c_str(), e.what());
        return 1;
    }
}
