// A buffer that ends exactly at a PROT_NONE page, as picohttpparser's tests do: a parser
// that reads even one byte past the length it was given touches the guard page and the
// test dies with SIGSEGV instead of passing by luck.
#pragma once

#include <sys/mman.h>
#include <unistd.h>

#include <cstddef>
#include <cstring>
#include <stdexcept>
#include <string>
#include <string_view>

namespace mux::test {

class GuardedBuffer {
  public:
    explicit GuardedBuffer(size_t capacity) {
        const size_t page = static_cast<size_t>(sysconf(_SC_PAGESIZE));
        data_pages_ = (capacity + page - 1) / page * page;
        if (data_pages_ == 0) data_pages_ = page;
        total_ = data_pages_ + page;
        void* map =
            mmap(nullptr, total_, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (map == MAP_FAILED) throw std::runtime_error("mmap of guarded buffer failed");
        base_ = static_cast<char*>(map);
        if (mprotect(base_ + data_pages_, page, PROT_NONE) != 0) {
            munmap(base_, total_);
            throw std::runtime_error("mprotect of guard page failed");
        }
    }
    ~GuardedBuffer() { munmap(base_, total_); }
    GuardedBuffer(const GuardedBuffer&) = delete;
    GuardedBuffer& operator=(const GuardedBuffer&) = delete;

    // Copies bytes so that their last byte is the last readable byte before the guard.
    const char* place(std::string_view bytes) {
        if (bytes.size() > data_pages_)
            throw std::length_error("guarded buffer holds " + std::to_string(data_pages_) +
                                    " bytes, asked for " + std::to_string(bytes.size()));
        char* at = base_ + data_pages_ - bytes.size();
        std::memcpy(at, bytes.data(), bytes.size());
        return at;
    }

  private:
    char* base_ = nullptr;
    size_t data_pages_ = 0;
    size_t total_ = 0;
};

}  // namespace mux::test
