/*
 * values.cpp — the seed's scenario: boxed script values behind a C API,
 * implemented in C++ (C++17), plus the global string intern table.
 *
 * What this file puts into the bitcode on purpose:
 *  - CreateWrappedValueFromInt: the seed's helper, a handful of IR instructions.
 *  - g_intern_table: a namespace-scope object with a dynamic initializer and a
 *    destructor -> an llvm.global_ctors entry (_GLOBAL__sub_I_values.cpp) and a
 *    __cxa_atexit registration of InternTable's destructor. The constructor must
 *    run exactly once per process/engine (rt_intern_ctor_runs), the destructor
 *    before the JIT memory is released.
 *  - linkonce_odr definitions: the `inline` function wv_hash (kept out of line with
 *    noinline), InternTable's in-class constructor/destructor, and the function
 *    template wv_clamp<T>.
 *  - static state (g_intern_table, g_intern_ctor_runs): promoted in the
 *    JIT-resident mode; functions that touch it directly (rt_intern,
 *    rt_intern_count, rt_intern_ctor_runs) are not importable host-native.
 * No std::string / std::unordered_map: keeps libstdc++ template bloat out.
 * Not thread-safe (one unsynchronised table).
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <new> // std::nothrow

#include "thinjit_host.h"
#include "thinjit_runtime.h"
#include "wrapped_value.h"

// ---------------------------------------------------------------------------
// C++ inline functions and a function template (linkonce_odr in the bitcode)
// ---------------------------------------------------------------------------

// FNV-1a. `inline` at namespace scope -> linkonce_odr; noinline keeps the
// definition in the module instead of being folded into every caller.
__attribute__((noinline)) inline uint32_t wv_hash(const char *s) {
    uint32_t h = 2166136261u;
    for (; *s != '\0'; ++s) {
        h ^= static_cast<uint8_t>(*s);
        h *= 16777619u;
    }
    return h;
}

template <class T> inline T wv_clamp(T v, T lo, T hi) { return v < lo ? lo : (hi < v ? hi : v); }

// ---------------------------------------------------------------------------
// The intern table: open addressing, linear probing, owned C strings
// ---------------------------------------------------------------------------

static int32_t g_intern_ctor_runs = 0;

class InternTable {
  public:
    static constexpr uint32_t kInitialCapacity = 1024; // power of two

    // Dynamic initializer with side effects: counter, heap allocation, host event.
    InternTable() : slots_(nullptr), cap_(kInitialCapacity), count_(0) {
        ++g_intern_ctor_runs;
        slots_ = new char *[cap_]();
        thinjit_host_event(THINJIT_EVENT_INTERN_CTOR);
    }

    // Frees every owned string and the bucket array, then tells the host.
    ~InternTable() {
        if (slots_ != nullptr) {
            for (uint32_t i = 0; i < cap_; ++i)
                delete[] slots_[i];
            delete[] slots_;
        }
        slots_ = nullptr;
        cap_ = 0;
        count_ = 0;
        thinjit_host_event(THINJIT_EVENT_INTERN_DTOR);
    }

    InternTable(const InternTable &) = delete;
    InternTable &operator=(const InternTable &) = delete;

    const char *intern(const char *s);
    int32_t count() const { return count_; }

  private:
    bool grow();

    char **slots_;
    uint32_t cap_;
    int32_t count_;
};

// Out of line: a strong, externally visible C++ symbol (_ZN11InternTable4growEv).
bool InternTable::grow() {
    uint32_t ncap = cap_ * 2;
    char **nslots = new (std::nothrow) char *[ncap]();
    if (nslots == nullptr)
        return false;
    for (uint32_t i = 0; i < cap_; ++i) {
        char *s = slots_[i];
        if (s == nullptr)
            continue;
        uint32_t j = wv_hash(s) & (ncap - 1);
        while (nslots[j] != nullptr)
            j = (j + 1) & (ncap - 1);
        nslots[j] = s;
    }
    delete[] slots_;
    slots_ = nslots;
    cap_ = ncap;
    return true;
}

// Out of line: _ZN11InternTable6internEPKc.
const char *InternTable::intern(const char *s) {
    // Before construction / after destruction (static init order, atexit): no table.
    if (slots_ == nullptr)
        return s;
    uint32_t mask = cap_ - 1;
    uint32_t i = wv_hash(s) & mask;
    while (slots_[i] != nullptr) {
        if (strcmp(slots_[i], s) == 0)
            return slots_[i];
        i = (i + 1) & mask;
    }
    // Keep the load factor at or below 1/2.
    if (static_cast<uint32_t>(count_ + 1) * 2 > cap_) {
        if (!grow()) {
            rt_report_error("rt_intern: out of memory growing the intern table");
            return s;
        }
        mask = cap_ - 1;
        i = wv_hash(s) & mask;
        while (slots_[i] != nullptr)
            i = (i + 1) & mask;
    }
    size_t len = strlen(s);
    char *copy = new (std::nothrow) char[len + 1];
    if (copy == nullptr) {
        rt_report_error("rt_intern: out of memory copying a string");
        return s;
    }
    memcpy(copy, s, len + 1);
    slots_[i] = copy;
    ++count_;
    return copy;
}

static InternTable g_intern_table;

// ---------------------------------------------------------------------------
// Internal helpers
// ---------------------------------------------------------------------------

static inline WrappedValue *wv_new(int32_t tag) {
    WrappedValue *v = static_cast<WrappedValue *>(rt_alloc(sizeof(WrappedValue)));
    if (v != nullptr) {
        v->tag = tag;
        v->pad = 0;
    }
    return v;
}

static inline int32_t wv_tag(const WrappedValue *v) { return v != nullptr ? v->tag : WV_INT; }

static double wv_as_double(const WrappedValue *v) {
    if (v == nullptr)
        return 0.0;
    switch (v->tag) {
    case WV_INT:
        return static_cast<double>(v->as.i);
    case WV_DOUBLE:
        return v->as.d;
    case WV_STRING:
        return v->as.s != nullptr ? strtod(v->as.s, nullptr) : 0.0;
    default:
        return 0.0;
    }
}

static inline int32_t wv_as_int(const WrappedValue *v) { return v != nullptr ? v->as.i : 0; }

static inline bool wv_both_int(const WrappedValue *a, const WrappedValue *b) {
    return wv_tag(a) == WV_INT && wv_tag(b) == WV_INT;
}

// Writes the textual form of v into buf (for numbers) or returns the string itself.
static const char *wv_to_text(const WrappedValue *v, char *buf, size_t cap) {
    switch (wv_tag(v)) {
    case WV_INT:
        snprintf(buf, cap, "%d", static_cast<int>(wv_as_int(v)));
        return buf;
    case WV_DOUBLE:
        snprintf(buf, cap, "%.15g", v->as.d);
        return buf;
    case WV_STRING:
        return v->as.s != nullptr ? v->as.s : "";
    default:
        return "";
    }
}

// ---------------------------------------------------------------------------
// The C API
// ---------------------------------------------------------------------------

extern "C" {

WrappedValue *CreateWrappedValueFromInt(int32_t v) {
    WrappedValue *w = wv_new(WV_INT);
    if (w != nullptr)
        w->as.i = v;
    return w;
}

WrappedValue *CreateWrappedValueFromDouble(double v) {
    WrappedValue *w = wv_new(WV_DOUBLE);
    if (w != nullptr)
        w->as.d = v;
    return w;
}

WrappedValue *CreateWrappedValueFromString(const char *s) {
    WrappedValue *w = wv_new(WV_STRING);
    if (w != nullptr)
        w->as.s = rt_intern(s != nullptr ? s : "");
    return w;
}

int32_t WrappedValueTag(const WrappedValue *v) { return v != nullptr ? v->tag : 0; }

int32_t WrappedValueGetInt(const WrappedValue *v) {
    if (v == nullptr)
        return 0;
    if (v->tag == WV_INT)
        return v->as.i;
    double d = wv_as_double(v);
    if (d != d) // NaN
        return 0;
    // Saturating truncation (double -> int32 out of range is UB in C++).
    return static_cast<int32_t>(wv_clamp<double>(d, -2147483648.0, 2147483647.0));
}

double WrappedValueGetDouble(const WrappedValue *v) { return wv_as_double(v); }

const char *WrappedValueGetString(const WrappedValue *v) {
    return (v != nullptr && v->tag == WV_STRING) ? v->as.s : nullptr;
}

WrappedValue *WrappedValueAdd(const WrappedValue *a, const WrappedValue *b) {
    if (wv_both_int(a, b))
        return CreateWrappedValueFromInt(
            static_cast<int32_t>(static_cast<uint32_t>(wv_as_int(a)) + static_cast<uint32_t>(wv_as_int(b))));
    return CreateWrappedValueFromDouble(wv_as_double(a) + wv_as_double(b));
}

WrappedValue *WrappedValueSub(const WrappedValue *a, const WrappedValue *b) {
    if (wv_both_int(a, b))
        return CreateWrappedValueFromInt(
            static_cast<int32_t>(static_cast<uint32_t>(wv_as_int(a)) - static_cast<uint32_t>(wv_as_int(b))));
    return CreateWrappedValueFromDouble(wv_as_double(a) - wv_as_double(b));
}

WrappedValue *WrappedValueMul(const WrappedValue *a, const WrappedValue *b) {
    if (wv_both_int(a, b))
        return CreateWrappedValueFromInt(
            static_cast<int32_t>(static_cast<uint32_t>(wv_as_int(a)) * static_cast<uint32_t>(wv_as_int(b))));
    return CreateWrappedValueFromDouble(wv_as_double(a) * wv_as_double(b));
}

int32_t WrappedValueCompare(const WrappedValue *a, const WrappedValue *b) {
    bool as = wv_tag(a) == WV_STRING, bs = wv_tag(b) == WV_STRING;
    if (as && bs) {
        const char *x = a->as.s != nullptr ? a->as.s : "";
        const char *y = b->as.s != nullptr ? b->as.s : "";
        if (x == y) // interned: pointer equality is string equality
            return 0;
        return wv_clamp<int32_t>(strcmp(x, y), -1, 1);
    }
    if (as != bs) // every number sorts before every string
        return as ? 1 : -1;
    if (wv_both_int(a, b)) {
        int32_t x = wv_as_int(a), y = wv_as_int(b);
        return (x > y) - (x < y);
    }
    double x = wv_as_double(a), y = wv_as_double(b);
    return (x > y) - (x < y); // NaN compares equal to everything
}

WrappedValue *WrappedValueConcat(const WrappedValue *a, const WrappedValue *b) {
    char abuf[48], bbuf[48];
    const char *x = wv_to_text(a, abuf, sizeof abuf);
    const char *y = wv_to_text(b, bbuf, sizeof bbuf);
    size_t lx = strlen(x), ly = strlen(y);
    char *tmp = static_cast<char *>(thinjit_host_alloc(lx + ly + 1));
    if (tmp == nullptr) {
        rt_report_error("WrappedValueConcat: out of memory");
        return nullptr;
    }
    memcpy(tmp, x, lx);
    memcpy(tmp + lx, y, ly + 1);
    WrappedValue *w = CreateWrappedValueFromString(tmp); // interns a copy
    thinjit_host_free(tmp);
    return w;
}

const char *rt_intern(const char *s) { return s != nullptr ? g_intern_table.intern(s) : nullptr; }

int32_t rt_intern_count(void) { return g_intern_table.count(); }

int32_t rt_intern_ctor_runs(void) { return g_intern_ctor_runs; }

} // extern "C"
