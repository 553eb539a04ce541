# MuPDF (AGPL) for PDF rendering, when found: defines the interface target dsocr_mupdf and sets
# DSOCR_HAVE_MUPDF. Debian's libmupdf-dev ships only static libraries, and its mupdf.pc leaves out
# harfbuzz and freetype: the libraries that libmupdf.a itself calls are listed here (MuPDF's bundled
# fonts and its lcms2 are inside libmupdf.a; libmupdf-third.a holds the rest it bundles).
find_path(MUPDF_INCLUDE_DIR mupdf/fitz.h)
find_library(MUPDF_LIBRARY mupdf)
find_library(MUPDF_THIRD_LIBRARY mupdf-third)
find_package(ZLIB)
find_package(Freetype)
find_package(JPEG)
set(_mupdf_deps mujs gumbo openjp2 jbig2dec harfbuzz)
set(_mupdf_found "${MUPDF_INCLUDE_DIR};${MUPDF_LIBRARY};${MUPDF_THIRD_LIBRARY};${ZLIB_FOUND};${FREETYPE_FOUND};${JPEG_FOUND}")
foreach(_dep ${_mupdf_deps})
  find_library(MUPDF_DEP_${_dep} ${_dep})
  list(APPEND _mupdf_found "${MUPDF_DEP_${_dep}}")
endforeach()
if(_mupdf_found MATCHES "NOTFOUND|FALSE")
  message(STATUS "dsocr: MuPDF not found (libmupdf-dev and the libraries it needs), building without it")
else()
  add_library(dsocr_mupdf INTERFACE)
  target_include_directories(dsocr_mupdf SYSTEM INTERFACE ${MUPDF_INCLUDE_DIR})
  target_link_libraries(dsocr_mupdf INTERFACE ${MUPDF_LIBRARY} ${MUPDF_THIRD_LIBRARY})
  foreach(_dep ${_mupdf_deps})
    target_link_libraries(dsocr_mupdf INTERFACE ${MUPDF_DEP_${_dep}})
  endforeach()
  # As -l flags, after libmupdf.a: the same libraries as targets may already sit earlier on the link
  # line (dsocr links freetype and libjpeg itself), where the linker drops them as not yet needed.
  target_link_libraries(dsocr_mupdf INTERFACE -lfreetype -ljpeg -lz -lm)
  set(DSOCR_HAVE_MUPDF ON)
  message(STATUS "dsocr: MuPDF PDF renderer enabled (AGPL: see README)")
endif()
