#include "conv_cases.h"

#define P(sh, sw, ph, pw, dh, dw, g) {sh, sw, ph, pw, dh, dw, g}

const conv_case conv_tiny_cases[] = {
    /* name                      n  h  w  c  k  r  s  stride pad   dil   groups   bias */
    {"3x3 s1 p1 7x5 bias",       1, 7, 5, 4, 6, 3, 3, P(1, 1, 1, 1, 1, 1, 1), true},
    {"3x3 s2 p1 batch3",         3, 7, 5, 3, 4, 3, 3, P(2, 2, 1, 1, 1, 1, 1), false},
    {"3x3 s2 p0 odd",            1, 7, 5, 2, 3, 3, 3, P(2, 2, 0, 0, 1, 1, 1), true},
    {"5x5 s1 p2",                1, 6, 7, 2, 3, 5, 5, P(1, 1, 2, 2, 1, 1, 1), true},
    {"3x3 dil2 p2 batch2",       2, 7, 7, 3, 2, 3, 3, P(1, 1, 2, 2, 2, 2, 1), false},
    {"3x3 dil4 p4 (FCN stage 4)", 1, 12, 12, 4, 3, 3, 3, P(1, 1, 4, 4, 4, 4, 1), false},
    {"mixed stride/pad/dil",     1, 8, 9, 3, 4, 3, 2, P(2, 1, 1, 0, 1, 2, 1), true},
    {"groups2 3x3",              1, 5, 6, 4, 6, 3, 3, P(1, 1, 1, 1, 1, 1, 2), true},
    {"groups2 s2 batch3",        3, 7, 5, 6, 4, 3, 3, P(2, 2, 1, 1, 1, 1, 2), false},
    {"depthwise 3x3",            2, 7, 5, 5, 5, 3, 3, P(1, 1, 1, 1, 1, 1, 5), true},
    {"depthwise s2",             1, 8, 7, 4, 4, 3, 3, P(2, 2, 1, 1, 1, 1, 4), false},
    {"depthwise 5x5 dil2 b3",    3, 9, 8, 3, 3, 5, 5, P(1, 2, 4, 2, 2, 1, 3), true},
    {"depthwise multiplier 2",   1, 6, 5, 3, 6, 3, 3, P(1, 1, 1, 1, 1, 1, 3), true},
    {"1x1 batch3 bias",          3, 5, 7, 6, 4, 1, 1, P(1, 1, 0, 0, 1, 1, 1), true},
    {"1x1 s2",                   2, 7, 5, 4, 3, 1, 1, P(2, 2, 0, 0, 1, 1, 1), false},
    {"1x1 groups2",              1, 3, 5, 4, 6, 1, 1, P(1, 1, 0, 0, 1, 1, 2), true},
    {"1x1 pad1",                 1, 4, 3, 3, 2, 1, 1, P(1, 1, 1, 1, 1, 1, 1), false},
    {"1x7 pad(0,3)",             1, 5, 9, 3, 4, 1, 7, P(1, 1, 0, 3, 1, 1, 1), true},
    {"7x1 pad(3,0) batch3",      3, 9, 5, 3, 4, 7, 1, P(1, 1, 3, 0, 1, 1, 1), false},
    {"7x7 s2 p3 stem",           1, 11, 9, 3, 4, 7, 7, P(2, 2, 3, 3, 1, 1, 1), true},
    {"3x3 pad2 wider than input", 1, 2, 3, 2, 3, 3, 3, P(1, 2, 2, 2, 1, 1, 1), true},
    {"3x3 one output pixel",     1, 3, 3, 2, 3, 3, 3, P(1, 1, 0, 0, 1, 1, 1), true},
    {"depthwise one output row", 1, 3, 4, 3, 3, 3, 3, P(1, 1, 0, 0, 1, 1, 3), true},
};
const size_t conv_tiny_case_count = sizeof conv_tiny_cases / sizeof conv_tiny_cases[0];

const conv_case conv_medium_cases[] = {
    {"3x3 s1 p1 16->24 bias", 2, 12, 10, 16, 24, 3, 3, P(1, 1, 1, 1, 1, 1, 1), true},
    /* stride-1 dense convs take the CPU's flipped-filter backward-data path:
     * cover uneven padding and non-square kernels there */
    {"5x3 s1 p(2,0) 8->12", 2, 9, 11, 8, 12, 5, 3, P(1, 1, 2, 0, 1, 1, 1), false},
    {"1x3 s1 p(0,1) 6->10 bias", 3, 7, 12, 6, 10, 1, 3, P(1, 1, 0, 1, 1, 1, 1), true},
    {"2x2 s1 p0 12->8", 2, 10, 9, 12, 8, 2, 2, P(1, 1, 0, 0, 1, 1, 1), false},
    {"7x1 s1 p(3,0) 8->8", 2, 11, 6, 8, 8, 7, 1, P(1, 1, 3, 0, 1, 1, 1), false},
    {"3x3 s2 groups4", 3, 11, 13, 16, 16, 3, 3, P(2, 2, 1, 1, 1, 1, 4), false},
    {"depthwise 32ch bias", 2, 10, 9, 32, 32, 3, 3, P(1, 1, 1, 1, 1, 1, 32), true},
    {"1x1 64->32 bias", 3, 8, 8, 64, 32, 1, 1, P(1, 1, 0, 0, 1, 1, 1), true},
    {"1x1 s2 32->48", 2, 9, 9, 32, 48, 1, 1, P(2, 2, 0, 0, 1, 1, 1), false},
    {"7x7 s2 p3 stem 3->8", 2, 30, 28, 3, 8, 7, 7, P(2, 2, 3, 3, 1, 1, 1), true},
};
const size_t conv_medium_case_count = sizeof conv_medium_cases / sizeof conv_medium_cases[0];

const conv_case conv_chunked_case = {"3x3 chunked 56x56 64->2 batch3", 3, 56, 56, 64, 2, 3, 3,
                                     P(1, 1, 1, 1, 1, 1, 1), true};
