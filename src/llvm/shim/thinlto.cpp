// thinjit's C++ shim, ThinLTO part: LLVM's own summary-based importer (the `llvm-importer` strategy), run in-process
// the way `llvm-lto -thinlto-action=import` runs it (llvm/tools/llvm-lto/llvm-lto.cpp, `import()`, and
// ThinLTOCodeGenerator::crossModuleImport in llvm/lib/LTO/ThinLTOCodeGenerator.cpp). The C API has no module
// summaries at all. Each function names the gap it fills. Compiled by build.rs; called only from src/llvm/thinlto.rs.

#include "llvm-c/Core.h"
#include "llvm/ADT/DenseMap.h"
#include "llvm/ADT/DenseSet.h"
#include "llvm/ADT/SmallVector.h"
#include "llvm/ADT/StringRef.h"
#include "llvm/Analysis/ModuleSummaryAnalysis.h"
#include "llvm/Analysis/ProfileSummaryInfo.h"
#include "llvm/Bitcode/BitcodeReader.h"
#include "llvm/Bitcode/BitcodeWriter.h"
#include "llvm/IR/GlobalValue.h"
#include "llvm/IR/Module.h"
#include "llvm/IR/ModuleSummaryIndex.h"
#include "llvm/Support/CommandLine.h"
#include "llvm/Support/Error.h"
#include "llvm/Support/raw_ostream.h"
#include "llvm/Transforms/IPO/FunctionImport.h"
#include "llvm/Transforms/Utils/ModuleUtils.h"

#include <chrono>
#include <cstdio>
#include <mutex>
#include <string>

using namespace llvm;

namespace {

// The module path the helper library has in a combined index (and the identifier the module loader is asked for).
constexpr const char *LibraryPath = "thinjit-helpers";

char *message(const std::string &text) { return LLVMCreateMessage(text.c_str()); }

char *message(Error err, const char *what) { return message(std::string(what) + ": " + toString(std::move(err))); }

// The writer of a ThinLTO summary rejects unnamed globals (ModuleBitcodeWriter: "Unexpected anonymous function when
// writing summary"); clang's ThinLTO pipeline names them first (NameAnonGlobalPass). Unnamed globals are private, so
// a name changes nothing else.
void nameAnonymousGlobals(Module &m, StringRef prefix) {
  unsigned n = 0;
  for (GlobalValue &gv : m.global_values())
    if (!gv.hasName()) gv.setName(prefix + "." + Twine(n++));
}

// The module's ThinLTO summary, as `opt -module-summary` computes it (ModuleSummaryIndexAnalysis): without a
// BlockFrequencyInfo callback, buildModuleSummaryIndex computes BFI only for functions with profile data, the only
// ones whose edge hotness depends on it.
ModuleSummaryIndex summarize(const Module &m) {
  ProfileSummaryInfo psi(m);
  return buildModuleSummaryIndex(m, nullptr, &psi);
}

// Copied from ThinLTOCodeGenerator.cpp's `getFirstDefinitionForLinker`: the copy the linker keeps among several
// (a strong definition if there is one, else the first that is not available_externally).
const GlobalValueSummary *firstDefinitionForLinker(const GlobalValueSummaryList &list) {
  for (const auto &s : list)
    if (!GlobalValue::isAvailableExternallyLinkage(s->linkage()) && !GlobalValue::isWeakForLinker(s->linkage()))
      return s.get();
  for (const auto &s : list)
    if (!GlobalValue::isAvailableExternallyLinkage(s->linkage())) return s.get();
  return nullptr;
}

// FunctionImport.cpp's thresholds are `cl::opt`s with no other way in. Setting them and computing the import
// lists happen under this lock, so concurrent imports with different settings do not see each other's values.
std::mutex knobLock;

bool setOption(StringRef name, const std::string &value, std::string &err) {
  auto &options = cl::getRegisteredOptions();
  auto it = options.find(name);
  if (it == options.end()) {
    err = ("LLVM has no option -" + name).str();
    return false;
  }
  // MultiArg: set the value without counting an occurrence (a second occurrence of an Optional option is an error).
  if (it->second->addOccurrence(0, name, value, /*MultiArg=*/true)) {
    err = ("LLVM rejected -" + name + "=" + value).str();
    return false;
  }
  return true;
}

std::string decimal(float v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.9g", static_cast<double>(v));
  return buf;
}

}  // namespace

extern "C" {

// FunctionImport.cpp's options, in thinjit's ImportConfig terms (src/llvm/thinlto.rs mirrors this layout).
struct ThinjitLlvmImportOptions {
  unsigned import_instr_limit;
  float import_instr_evolution_factor;
  float import_hot_evolution_factor;
  float import_hot_multiplier;
  float import_critical_multiplier;
  float import_cold_multiplier;
  int force_import_all;
  // Also preserve every external definition of the library (a JIT-resident runtime may be called by any later
  // script or by the host); otherwise only the script's own definitions and `llvm.used`, as llvm-lto's
  // `-exported-symbol` list of the script.
  int preserve_library;
};

// Gap: llvm-c writes bitcode without a module summary (LLVMWriteBitcodeToMemoryBuffer), and has no summary analysis.
// Names unnamed globals (the summary writer needs names), builds the module's ThinLTO summary and writes both, as
// `opt -module-summary` does. The caller owns the returned buffer (LLVMDisposeMemoryBuffer).
LLVMMemoryBufferRef thinjit_write_bitcode_with_summary(LLVMModuleRef module) {
  Module &m = *unwrap(module);
  nameAnonymousGlobals(m, "thinjit.anon");
  ModuleSummaryIndex index = summarize(m);
  SmallVector<char, 0> bytes;
  raw_svector_ostream os(bytes);
  WriteBitcodeToFile(m, os, /*ShouldPreserveUseListOrder=*/false, &index);
  return LLVMCreateMemoryBufferWithMemoryRangeCopy(bytes.data(), bytes.size(), "thinjit-summary-bitcode");
}

// Gap: llvm-c cannot tell whether bitcode carries a ThinLTO summary (getBitcodeLTOInfo). Returns 1 if the single
// module in `data` has a summary, 0 if it has none, -1 if the bytes are not readable bitcode.
int thinjit_bitcode_has_summary(const char *data, size_t len) {
  Expected<BitcodeLTOInfo> info = getBitcodeLTOInfo(MemoryBufferRef(StringRef(data, len), "bitcode"));
  if (!info) {
    consumeError(info.takeError());
    return -1;
  }
  return info->HasSummary ? 1 : 0;
}

// Gap: llvm-c has no ThinLTO. Imports into `script` (in place, in its own context) what LLVM's FunctionImporter
// imports from the helper library `library` (bitcode with a ThinLTO summary), the way `llvm-lto
// -thinlto-action=import` does: the script's summary written with it to memory; a combined index read from both
// summaries (BitcodeModule::readSummary, module paths "thinjit-helpers" and the script's identifier);
// computeDeadSymbolsWithConstProp with the preserved symbols; the prevailing copies; ComputeCrossModuleImport; then
// FunctionImporter::importFunctions with a loader that lazily loads the library bitcode in the script's context
// (getLazyModule, metadata lazily, as an import source). Imported definitions arrive available_externally;
// declarations of what stays in the runtime are not dso_local (JIT'd code may be far from it). The library bytes
// must outlive the call. `seconds` receives the time of each step: [0] the script's summary, [1] the thin link,
// [2] dead symbols and import lists, [3] the import. Returns null on success, else a message the caller frees with
// LLVMDisposeMessage.
char *thinjit_llvm_import(LLVMModuleRef script, const char *library, size_t library_len,
                          const ThinjitLlvmImportOptions *options, double *seconds) {
  using clock = std::chrono::steady_clock;
  auto started = clock::now();
  auto lap = [&](int i) {
    auto now = clock::now();
    seconds[i] = std::chrono::duration<double>(now - started).count();
    started = now;
  };
  for (int i = 0; i < 4; i++) seconds[i] = 0;
  Module &m = *unwrap(script);
  LLVMContext &ctx = m.getContext();
  std::string scriptPath = m.getModuleIdentifier();
  if (scriptPath.empty() || scriptPath == LibraryPath) scriptPath = "thinjit-script";

  // The script's summary, written with the script to memory (what `opt -module-summary` gives the thin link).
  nameAnonymousGlobals(m, "thinjit.script.anon");
  ModuleSummaryIndex scriptIndex = summarize(m);
  SmallVector<char, 0> scriptBitcode;
  {
    raw_svector_ostream os(scriptBitcode);
    WriteBitcodeToFile(m, os, /*ShouldPreserveUseListOrder=*/false, &scriptIndex);
  }
  lap(0);

  // The thin link: one combined index from the library's summary and the script's.
  Expected<std::vector<BitcodeModule>> libraryModules =
      getBitcodeModuleList(MemoryBufferRef(StringRef(library, library_len), LibraryPath));
  if (!libraryModules) return message(libraryModules.takeError(), "reading the helper library bitcode");
  if (libraryModules->size() != 1) return message("the helper library bitcode does not hold exactly one module");
  BitcodeModule &libraryModule = libraryModules->front();
  Expected<BitcodeLTOInfo> libraryInfo = libraryModule.getLTOInfo();
  if (!libraryInfo) return message(libraryInfo.takeError(), "reading the helper library bitcode");
  if (!libraryInfo->HasSummary) return message("the helper library bitcode carries no ThinLTO summary");
  Expected<std::vector<BitcodeModule>> scriptModules =
      getBitcodeModuleList(MemoryBufferRef(StringRef(scriptBitcode.data(), scriptBitcode.size()), scriptPath));
  if (!scriptModules) return message(scriptModules.takeError(), "reading the script's summary");

  ModuleSummaryIndex combined(/*HaveGVs=*/false);
  if (Error err = libraryModule.readSummary(combined, LibraryPath))
    return message(std::move(err), "reading the helper library's summary");
  if (Error err = scriptModules->front().readSummary(combined, scriptPath))
    return message(std::move(err), "reading the script's summary");
  lap(1);

  // Preserved symbols: the script's definitions and `llvm.used` (llvm-lto: -exported-symbol and
  // addUsedSymbolToPreservedGUID), and with `preserve_library` every external definition of the library.
  DenseSet<GlobalValue::GUID> preserved;
  for (const GlobalValue &gv : m.global_values())
    if (!gv.isDeclaration() && !gv.hasLocalLinkage()) preserved.insert(gv.getGUID());
  SmallVector<GlobalValue *, 4> used;
  collectUsedGlobalVariables(m, used, /*CompilerUsed=*/false);
  for (GlobalValue *gv : used) preserved.insert(gv->getGUID());
  if (options->preserve_library)
    for (const auto &entry : combined)
      for (const auto &s : entry.second.SummaryList)
        if (s->modulePath() == LibraryPath && !GlobalValue::isLocalLinkage(s->linkage())) preserved.insert(entry.first);

  // Dead symbols, then read-only / write-only propagation (ThinLTOCodeGenerator's computeDeadSymbolsInIndex: no
  // symbol resolution, so prevalence is unknown).
  computeDeadSymbolsWithConstProp(
      combined, preserved, [](GlobalValue::GUID) { return PrevailingType::Unknown; }, /*ImportEnabled=*/true);

  DenseMap<GlobalValue::GUID, const GlobalValueSummary *> prevailingCopy;
  for (const auto &entry : combined)
    if (entry.second.SummaryList.size() > 1)
      prevailingCopy[entry.first] = firstDefinitionForLinker(entry.second.SummaryList);
  auto isPrevailing = [&](GlobalValue::GUID guid, const GlobalValueSummary *s) {
    auto it = prevailingCopy.find(guid);
    return it == prevailingCopy.end() || it->second == s;
  };

  DenseMap<StringRef, GVSummaryMapTy> definedPerModule;
  combined.collectDefinedGVSummariesPerModule(definedPerModule);
  DenseMap<StringRef, FunctionImporter::ImportMapTy> importLists;
  DenseMap<StringRef, FunctionImporter::ExportSetTy> exportLists;
  {
    std::lock_guard<std::mutex> guard(knobLock);
    std::string err;
    if (!setOption("import-instr-limit", std::to_string(options->import_instr_limit), err) ||
        !setOption("import-instr-evolution-factor", decimal(options->import_instr_evolution_factor), err) ||
        !setOption("import-hot-evolution-factor", decimal(options->import_hot_evolution_factor), err) ||
        !setOption("import-hot-multiplier", decimal(options->import_hot_multiplier), err) ||
        !setOption("import-critical-multiplier", decimal(options->import_critical_multiplier), err) ||
        !setOption("import-cold-multiplier", decimal(options->import_cold_multiplier), err) ||
        !setOption("force-import-all", options->force_import_all ? "true" : "false", err))
      return message(err);
    ComputeCrossModuleImport(combined, definedPerModule, isPrevailing, importLists, exportLists);
  }
  lap(2);
  auto list = importLists.find(scriptPath);
  if (list == importLists.end()) return nullptr;

  // The import itself: the library loaded lazily into the script's context, only the imported bodies read.
  auto loader = [&](StringRef identifier) -> Expected<std::unique_ptr<Module>> {
    if (identifier != LibraryPath)
      return createStringError(inconvertibleErrorCode(), "no module `" + identifier + "` to import from");
    return libraryModule.getLazyModule(ctx, /*ShouldLazyLoadMetadata=*/true, /*IsImporting=*/true);
  };
  FunctionImporter importer(combined, loader, /*ClearDSOLocalOnDeclarations=*/true);
  Expected<bool> imported = importer.importFunctions(m, list->second);
  if (!imported) return message(imported.takeError(), "importing");
  lap(3);
  return nullptr;
}

}  // extern "C"
