// bf16 ↔ f32 for the fake GPU's host code: bf16 is the top half of an f32; narrowing rounds to
// nearest even (as cvt.rn.bf16.f32), NaN stays a quiet NaN.
#pragma once
#include <cmath>
#include <cstdint>
#include <cstring>

inline float bf(uint16_t b) {
    const uint32_t u = (uint32_t)b << 16;
    float f;
    memcpy(&f, &u, 4);
    return f;
}

inline uint16_t to_bf(float f) {
    if (std::isnan(f)) return 0x7fc0;
    uint32_t u;
    memcpy(&u, &f, 4);
    u += 0x7fff + ((u >> 16) & 1);
    return (uint16_t)(u >> 16);
}
