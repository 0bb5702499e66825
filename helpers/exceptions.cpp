/*
 * exceptions.cpp — a helper whose body really throws and catches a C++
 * exception: rt_checked_div contains invoke / landingpad and references
 * __gxx_personality_v0, __cxa_begin_catch / __cxa_end_catch and the
 * exception's type info (_ZTI14DivisionByZero, linkonce_odr constant).
 * The throwing helper is a static noinline function (an internal callee:
 * promoted JIT-resident, copied privately host-native).
 */
#include <stdint.h>

#include "thinjit_runtime.h"

// Small custom exception type: no std::exception / std::string needed. At namespace
// scope (not in an anonymous namespace) so its type info and type name are
// linkonce_odr constants (_ZTI14DivisionByZero, _ZTS14DivisionByZero).
struct DivisionByZero {
    int32_t numerator;
};

__attribute__((noinline)) static int32_t checked_div_or_throw(int32_t a, int32_t b) {
    if (b == 0)
        throw DivisionByZero{a};
    if (a == INT32_MIN && b == -1) // the one overflowing quotient: wrap instead of trapping
        return INT32_MIN;
    return a / b;
}

extern "C" int32_t rt_checked_div(int32_t a, int32_t b) {
    try {
        return checked_div_or_throw(a, b);
    } catch (const DivisionByZero &) {
        return INT32_MIN;
    }
}
