/*
 * wrapped_value.h — the seed's scenario: boxed script values.
 *
 * Implemented in C++ (helpers/values.cpp), exposed as a C API. Every
 * WrappedValue is allocated with rt_alloc (helpers/runtime.c) and never freed
 * by the runtime (scripts are short-lived; the host owns the heap).
 * String payloads always point at the canonical copy held by the global
 * intern table, so two equal strings compare equal by pointer.
 *
 * A NULL WrappedValue operand behaves like the integer 0. In arithmetic a
 * string operand is converted with strtod. Not thread-safe: the intern table
 * is one unsynchronised global.
 */
#ifndef THINJIT_WRAPPED_VALUE_H
#define THINJIT_WRAPPED_VALUE_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

enum { WV_INT = 1, WV_DOUBLE = 2, WV_STRING = 3 };

typedef struct WrappedValue {
    int32_t tag;
    int32_t pad;
    union {
        int32_t i;
        double d;
        const char *s;
    } as;
} WrappedValue;

/* Constructors. CreateWrappedValueFromInt is the seed's helper: tiny, importable, inlinable. */
WrappedValue *CreateWrappedValueFromInt(int32_t v);
WrappedValue *CreateWrappedValueFromDouble(double v);
WrappedValue *CreateWrappedValueFromString(const char *s); /* interns s */

/* Accessors. Getters convert: GetInt of a double truncates (saturating), GetDouble of an int widens,
 * GetString of a number returns NULL, a numeric getter of a string parses it. */
int32_t WrappedValueTag(const WrappedValue *v); /* 0 for NULL */
int32_t WrappedValueGetInt(const WrappedValue *v);
double WrappedValueGetDouble(const WrappedValue *v);
const char *WrappedValueGetString(const WrappedValue *v);

/* Arithmetic: int op int -> int (wrapping, two's complement), anything else -> double. */
WrappedValue *WrappedValueAdd(const WrappedValue *a, const WrappedValue *b);
WrappedValue *WrappedValueSub(const WrappedValue *a, const WrappedValue *b);
WrappedValue *WrappedValueMul(const WrappedValue *a, const WrappedValue *b);

/* -1 / 0 / 1. Numbers compare numerically; strings with strcmp; every number sorts before every string. */
int32_t WrappedValueCompare(const WrappedValue *a, const WrappedValue *b);

/* String concatenation; numbers are formatted (%d / %.15g). The result is interned. */
WrappedValue *WrappedValueConcat(const WrappedValue *a, const WrappedValue *b);

/* The global intern table (a C++ object with a dynamic initializer and a destructor). */
const char *rt_intern(const char *s); /* canonical copy; NULL for NULL */
int32_t rt_intern_count(void);        /* number of distinct interned strings */
int32_t rt_intern_ctor_runs(void);    /* times the table's constructor ran (must be 1) */

#ifdef __cplusplus
} /* extern "C" */
#endif

#endif /* THINJIT_WRAPPED_VALUE_H */
