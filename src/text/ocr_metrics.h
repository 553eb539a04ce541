// Scores of a recognised text against its ground truth, as the DeepSeek-OCR paper reports them for
// the Fox benchmark (Table 2) and OmniDocBench (Table 3).
//
// Precision (Fox): the paper does not define it; it reuses the Fox / GOT-OCR2.0 evaluation, whose
// script (github.com/Ucas-HaoranWei/GOT-OCR2.0, GOT/eval/pyevaltools/eval_ocr.py, nougat_per_metrics)
// splits both texts into words (Python str.split(); jieba for Chinese), takes the word *sets* and
// calls nltk.metrics.precision(reference, hypothesis) = |reference & hypothesis| / |hypothesis|.
// The script passes the ground truth as the hypothesis (nougat_per_metrics(root, label, answer)
// against the signature (root, pred, gt)), so the number it reports as precision is
//     |distinct GT words that occur in the output| / |distinct GT words|,
// i.e. the share of the ground truth's vocabulary recovered. fox_precision computes exactly that.
// output_precision is the other direction (the share of distinct output words found in the ground
// truth): it falls when the model invents words. Where dsocr differs from the script: Chinese text
// is split into characters (no jieba), and an empty output scores 0 (the script leaves such pages
// out of its mean).
//
// Edit distance: Levenshtein distance over Unicode characters divided by the longer length, as
// nltk.edit_distance(pred, gt) / max(len(pred), len(gt)) in the same script (0 for two empty texts).
#pragma once
#include <string>
#include <string_view>
#include <vector>

namespace dsocr {

// Python str.split() on whitespace; text with a CJK ideograph (U+4E00..U+9FA5, the script's test)
// is split into its non-space characters instead.
std::vector<std::string> score_words(std::string_view text);

double fox_precision(std::string_view ground_truth, std::string_view output);
double output_precision(std::string_view ground_truth, std::string_view output);
double normalized_edit_distance(std::string_view a, std::string_view b);

}  // namespace dsocr
