#include "backend/cpu/linear_batch.h"

#include <algorithm>
#include <vector>

namespace dsocr::cpu {

void linear_batch(ThreadPool& pool, std::span<const LinearJob> jobs) {
  // linear() streams the weight for at most this many rows; more rows go through SGEMM, which
  // brings its own threading and must not run nested.
  constexpr int64_t kStreamRows = 8;
  constexpr int64_t kBlock = 32;  // output features per piece of work
  bool all_small = true;
  for (const LinearJob& j : jobs) all_small = all_small && j.M <= kStreamRows;
  if (!all_small) {
    for (const LinearJob& j : jobs) linear(pool, j.A, j.M, j.W, nullptr, j.C);
    return;
  }

  struct Piece {
    const LinearJob* job;
    int64_t row0, rows;
  };
  std::vector<Piece> pieces;
  for (const LinearJob& j : jobs)
    for (int64_t r = 0; r < j.W.rows; r += kBlock) pieces.push_back({&j, r, std::min(kBlock, j.W.rows - r)});

  pool.parallel_for(pieces.size(), [&](size_t p0, size_t p1) {
    for (size_t p = p0; p < p1; ++p) {
      const Piece& pc = pieces[p];
      const LinearJob& j = *pc.job;
      // Nested in the pool, so this runs on the current thread.
      linear(pool, j.A, j.M, j.W.row_slice(pc.row0, pc.rows), nullptr, j.C + pc.row0, false, j.W.cols, j.W.rows);
    }
  });
}

}  // namespace dsocr::cpu
