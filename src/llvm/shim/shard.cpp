// thinjit's C++ shim, shard bitcode: what LLVM's bitcode writer has no option for.

#include "llvm-c/Core.h"
#include "llvm/ADT/SmallVector.h"
#include "llvm/Bitcode/LLVMBitCodes.h"
#include "llvm/Bitstream/BitstreamReader.h"
#include "llvm/Bitstream/BitstreamWriter.h"
#include "llvm/IR/Instruction.h"
#include "llvm/IR/Module.h"

#include <cstring>
#include <vector>

using namespace llvm;

namespace {

// A block id no LLVM reader knows: readers skip such a block by its length without reading it.
constexpr unsigned kPaddingBlockId = 120;

// Where the module's METADATA_KIND block is: its abbreviation width, the bit where its content starts (32-bit
// aligned) and its length in 32-bit words, and the records it holds ([kind id, name chars...]).
struct KindBlock {
  unsigned abbrevWidth = 0;
  uint64_t contentBit = 0;
  unsigned words = 0;
  std::vector<SmallVector<uint64_t, 16>> records;
};

// Walks identification and module blocks (skipping every other block and record) to the module's
// METADATA_KIND block and reads it. False when the bitcode has a wrapper, no such block, or does not read.
bool findKindBlock(ArrayRef<uint8_t> bytes, KindBlock &out) {
  if (bytes.size() < 8 || bytes[0] != 'B' || bytes[1] != 'C' || bytes[2] != 0xC0 || bytes[3] != 0xDE) return false;
  BitstreamCursor cursor(bytes);
  if (Error e = cursor.JumpToBit(32)) {
    consumeError(std::move(e));
    return false;
  }
  bool inModule = false;
  while (true) {
    Expected<BitstreamEntry> entry = cursor.advance();
    if (!entry) {
      consumeError(entry.takeError());
      return false;
    }
    switch (entry->Kind) {
      case BitstreamEntry::Error:
      case BitstreamEntry::EndBlock:
        return false;
      case BitstreamEntry::Record:
        if (!inModule) return false;
        if (Expected<unsigned> code = cursor.skipRecord(entry->ID); !code) {
          consumeError(code.takeError());
          return false;
        }
        break;
      case BitstreamEntry::SubBlock:
        if (!inModule && entry->ID == bitc::MODULE_BLOCK_ID) {
          if (Error e = cursor.EnterSubBlock(bitc::MODULE_BLOCK_ID)) {
            consumeError(std::move(e));
            return false;
          }
          inModule = true;
        } else if (inModule && entry->ID == bitc::METADATA_KIND_BLOCK_ID) {
          if (Error e = cursor.EnterSubBlock(bitc::METADATA_KIND_BLOCK_ID, &out.words)) {
            consumeError(std::move(e));
            return false;
          }
          out.abbrevWidth = cursor.getAbbrevIDWidth();
          out.contentBit = cursor.GetCurrentBitNo();
          if (out.contentBit % 32 != 0) return false;
          while (true) {
            Expected<BitstreamEntry> rec = cursor.advance();
            if (!rec) {
              consumeError(rec.takeError());
              return false;
            }
            if (rec->Kind == BitstreamEntry::EndBlock) return true;
            if (rec->Kind == BitstreamEntry::SubBlock) {
              // Padding left by thinjit_trim_metadata_kinds (LLVM's reader skips it the same way).
              if (Error e = cursor.SkipBlock()) {
                consumeError(std::move(e));
                return false;
              }
              continue;
            }
            if (rec->Kind != BitstreamEntry::Record) return false;
            SmallVector<uint64_t, 16> record;
            Expected<unsigned> code = cursor.readRecord(rec->ID, record);
            if (!code) {
              consumeError(code.takeError());
              return false;
            }
            if (*code != bitc::METADATA_KIND || record.empty()) return false;
            out.records.push_back(std::move(record));
          }
        } else if (Error e = cursor.SkipBlock()) {
          consumeError(std::move(e));
          return false;
        }
        break;
    }
  }
}

}  // namespace

extern "C" {

// Gap: LLVM's bitcode writer lists every metadata kind the context knows (43 in LLVM 19) in each module's
// METADATA_KIND block, and the reader decodes all of them, record by record and character by character, each
// time the module is read: for a small helper shard that is about half the fixed cost of reading any module.
// Rewrites, in place, the METADATA_KIND block of `data` (bitcode just written from `m`) so that it lists only
// the kinds `m` attaches to instructions, functions and global variables (with their original ids, so every
// attachment keeps its kind), followed by a padding block readers skip by its length: the block, and so every
// offset in the file, keeps its size. Returns the number of kinds kept, or -1 when the bitcode was left as it
// was (no such block, or nothing to gain).
long thinjit_trim_metadata_kinds(LLVMModuleRef m, char *data, size_t len) {
  Module *module = unwrap(m);
  SmallVector<bool, 64> used;
  auto use = [&](unsigned kind) {
    if (kind >= used.size()) used.resize(kind + 1, false);
    used[kind] = true;
  };
  SmallVector<std::pair<unsigned, MDNode *>, 8> mds;
  for (GlobalObject &go : module->global_objects()) {
    mds.clear();
    go.getAllMetadata(mds);
    for (auto &[kind, node] : mds) use(kind);
    if (auto *f = dyn_cast<Function>(&go))
      for (BasicBlock &bb : *f)
        for (Instruction &inst : bb) {
          mds.clear();
          inst.getAllMetadata(mds);
          for (auto &[kind, node] : mds) use(kind);
        }
  }

  ArrayRef<uint8_t> bytes(reinterpret_cast<const uint8_t *>(data), len);
  KindBlock block;
  if (!findKindBlock(bytes, block)) return -1;

  SmallVector<char, 256> content;
  long kept = 0;
  {
    BitstreamWriter w(content);
    const unsigned width = block.abbrevWidth;
    for (const auto &record : block.records) {
      uint64_t kind = record[0];
      if (kind >= used.size() || !used[kind]) continue;
      w.Emit(bitc::UNABBREV_RECORD, width);
      w.EmitVBR(bitc::METADATA_KIND, 6);
      w.EmitVBR(static_cast<uint32_t>(record.size()), 6);
      for (uint64_t op : record) w.EmitVBR64(op, 6);
      ++kept;
    }
    // Padding: an unknown block filling the rest, then the end of the METADATA_KIND block.
    uint64_t headerEnd = w.GetCurrentBitNo() + width + 8 + 4;
    uint64_t headerWords = (headerEnd + 31) / 32;
    if (headerWords + 2 > block.words) return -1;
    uint32_t padding = static_cast<uint32_t>(block.words - headerWords - 2);
    w.Emit(bitc::ENTER_SUBBLOCK, width);
    w.EmitVBR(kPaddingBlockId, 8);
    w.EmitVBR(2, 4);
    w.FlushToWord();
    w.Emit(padding, 32);
    for (uint32_t i = 0; i < padding; ++i) w.Emit(0, 32);
    w.Emit(bitc::END_BLOCK, width);
    w.FlushToWord();
  }
  if (content.size() != static_cast<size_t>(block.words) * 4) return -1;
  std::memcpy(data + block.contentBit / 8, content.data(), content.size());
  return kept;
}

// For tests: the number of METADATA_KIND records in the module of `data`, or -1 when it has no such block.
long thinjit_bitcode_metadata_kind_count(const char *data, size_t len) {
  KindBlock block;
  if (!findKindBlock(ArrayRef<uint8_t>(reinterpret_cast<const uint8_t *>(data), len), block)) return -1;
  return static_cast<long>(block.records.size());
}

}  // extern "C"
