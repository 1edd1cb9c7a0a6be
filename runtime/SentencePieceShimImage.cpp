//===- SentencePieceShimImage.cpp - the shim library's bytes, embedded ----------------===//
//
// The shared library built from SentencePieceShim.cpp, included byte for byte with the
// assembler's .incbin, so that an executable linking LlamacRuntime needs no file beside it:
// Tokenizer.cpp writes these bytes to an anonymous memory file and dlmopen()s that. CMake
// passes the library's path as LLAMAC_SPM_SHIM_PATH and rebuilds this file when it changes.
//
//===----------------------------------------------------------------------------------===//
#ifndef LLAMAC_SPM_SHIM_PATH
#error "LLAMAC_SPM_SHIM_PATH must name the built SentencePiece shim library"
#endif

asm(".pushsection .rodata.llamac_spm_shim,\"a\",@progbits\n"
    ".balign 64\n"
    ".globl llamac_spm_shim_begin\n"
    ".hidden llamac_spm_shim_begin\n"
    "llamac_spm_shim_begin:\n"
    ".incbin \"" LLAMAC_SPM_SHIM_PATH "\"\n"
    ".globl llamac_spm_shim_end\n"
    ".hidden llamac_spm_shim_end\n"
    "llamac_spm_shim_end:\n"
    ".popsection\n");
