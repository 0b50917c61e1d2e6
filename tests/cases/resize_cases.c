#include "resize_cases.h"

const rs_case rs_cases[] = {
    {"up x2.4 / x1.43 (non-integer)", 2, 5, 7, 3, 12, 10},
    {"down /2.75 / /2.6 (non-integer)", 2, 11, 13, 3, 4, 5},
    {"up rows, down columns", 1, 6, 9, 2, 9, 4},
    {"FCN-style x2 upsampling", 2, 3, 4, 5, 6, 8},
    {"identity", 1, 4, 5, 3, 4, 5},
    {"1-pixel input", 2, 1, 1, 3, 5, 3},
    {"1-row input to 1 column", 1, 1, 4, 2, 3, 1},
    {"1-pixel output", 1, 4, 3, 2, 1, 1},
    {"70 channels (two CPU blocks)", 1, 3, 4, 70, 5, 7},
};
const size_t rs_case_count = sizeof rs_cases / sizeof rs_cases[0];
