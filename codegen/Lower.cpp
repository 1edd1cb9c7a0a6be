//===- Lower.cpp - tensor-level llama IR to the kernel-level IR ---------------------===//
//
// Storage first, then launches. Storage decisions, in order of preference:
//   * views: llama.get_param is the parameter's slot, llama.split_dim / merge_dims and a
//     slice of contiguous rows alias their input, and so does a concatenation of windows
//     lying back to back in one buffer (isView, passes/MemoryPlan.h); function
//     arguments are the caller's input buffers;
//   * stored elsewhere: a value whose only use is `llama.set_param @p` is written straight
//     into @p when nothing reads the old @p after the value is computed (the accumulation
//     `grad.x + g`, AdamW's new parameters and moments); a value returned once is written
//     straight into the caller's result buffer; a splat constant only stored to parameters
//     becomes fills of those parameters;
//   * everything else gets an arena slot from the memory plan (passes/MemoryPlan.h), which
//     is told about the values stored elsewhere so that it plans only what remains.
//
//===----------------------------------------------------------------------------------===//
#include "codegen/Lower.h"

#include "passes/MemoryPlan.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Math/IR/Math.h"
#include "mlir/Dialect/Shard/IR/ShardOps.h"
#include "mlir/IR/BuiltinAttributes.h"
#include "llvm/ADT/DenseMap.h"
#include "llvm/ADT/DenseSet.h"
#include "llvm/ADT/StringMap.h"
#include "llvm/ADT/StringSet.h"
#include "llvm/ADT/TypeSwitch.h"
#include "llvm/Support/MathExtras.h"
#include "llvm/Support/raw_ostream.h"

#include <cmath>

using namespace mlir;
using namespace llamac;
using namespace llamac::kir;
using namespace llamac::llama;

//===----------------------------------------------------------------------------------===//
// Parameters
//===----------------------------------------------------------------------------------===//

static ParamInit paramInitOf(InitKind kind) {
  switch (kind) {
  case InitKind::zeros:
    return ParamInit::Zeros;
  case InitKind::ones:
    return ParamInit::Ones;
  case InitKind::normal:
    return ParamInit::Normal;
  }
  return ParamInit::Zeros;
}

static ParamRole roleOf(StringRef name) {
  name.consume_front("fsdp."); // a shard has the role of what it is a shard of
  if (name.starts_with("grad."))
    return ParamRole::Gradient;
  if (name.starts_with("adamw.m."))
    return ParamRole::AdamM;
  if (name.starts_with("adamw.v."))
    return ParamRole::AdamV;
  return ParamRole::Weight;
}

/// The `llama.fsdp` layouts of llamac-plan-fsdp's shards (one per unit, shared by its four
/// shards) into Program::shardLayouts, and the rank count of the grid.
static LogicalResult lowerShardLayouts(ModelOp model, Program &program) {
  program.fsdpRanks = 0;
  program.fsdpGrid.clear();
  program.shardLayouts.clear();
  DenseMap<Attribute, int64_t> layoutIndex;
  for (ParamOp p : model.getOps<ParamOp>()) {
    auto attr = p->getAttrOfType<DictionaryAttr>("llama.fsdp");
    if (!attr)
      continue;
    int64_t index = program.findParam(p.getSymName().str());
    auto [it, inserted] = layoutIndex.try_emplace(attr, int64_t(program.shardLayouts.size()));
    program.params[index].shard = it->second;
    // Each shard holds padded / ranks elements of its unit (the drivers rely on it).
    auto ranks = attr.getAs<IntegerAttr>("ranks");
    auto padded = attr.getAs<IntegerAttr>("padded");
    if (ranks && padded && ranks.getInt() >= 1 &&
        program.params[index].elements() * ranks.getInt() != padded.getInt())
      return p.emitError("@") << p.getSymName() << " does not hold 1/ranks of its unit's "
                              << "padded elements (its llama.fsdp layout)";
    if (!inserted)
      continue;
    auto members = attr.getAs<ArrayAttr>("members");
    auto offsets = attr.getAs<DenseI64ArrayAttr>("offsets");
    auto shapes = attr.getAs<ArrayAttr>("shapes");
    auto inits = attr.getAs<ArrayAttr>("inits");
    auto stds = attr.getAs<DenseF64ArrayAttr>("stds");
    auto integer = [&](StringRef key) -> int64_t {
      auto v = attr.getAs<IntegerAttr>(key);
      return v ? v.getInt() : -1;
    };
    ShardLayout layout;
    layout.ranks = integer("ranks");
    layout.flat = integer("flat");
    layout.padded = integer("padded");
    size_t n = members ? members.size() : 0;
    if (!members || !offsets || !shapes || !inits || !stds || offsets.size() != int64_t(n) ||
        shapes.size() != n || inits.size() != n || stds.size() != int64_t(n) ||
        layout.ranks < 1 || layout.padded % layout.ranks != 0 || layout.flat > layout.padded)
      return p.emitError("malformed llama.fsdp layout on @") << p.getSymName();
    auto replicasAttr = attr.getAs<IntegerAttr>("replicas");
    int64_t replicas = replicasAttr ? replicasAttr.getInt() : 1;
    if (replicas < 1)
      return p.emitError("malformed llama.fsdp layout on @") << p.getSymName();
    std::vector<int64_t> grid =
        replicas > 1 ? std::vector<int64_t>{replicas, layout.ranks}
                     : std::vector<int64_t>{layout.ranks};
    if (program.fsdpRanks && program.fsdpGrid != grid)
      return p.emitError("@") << p.getSymName()
                              << " is sharded on another grid than the other parameters";
    program.fsdpRanks = layout.ranks * replicas;
    program.fsdpGrid = grid;
    for (size_t i = 0; i < n; ++i) {
      ShardMember m;
      auto name = dyn_cast<StringAttr>(members[i]);
      auto shape = dyn_cast<DenseI64ArrayAttr>(shapes[i]);
      auto init = dyn_cast<StringAttr>(inits[i]);
      std::optional<InitKind> kind = init ? symbolizeInitKind(init.getValue()) : std::nullopt;
      if (!name || !shape || !kind)
        return p.emitError("malformed member ") << i << " in the llama.fsdp layout of @"
                                                << p.getSymName();
      m.name = name.getValue().str();
      m.offset = offsets[i];
      m.shape.assign(shape.asArrayRef().begin(), shape.asArrayRef().end());
      m.init = paramInitOf(*kind);
      m.std = stds[i];
      if (m.offset < 0 || m.offset + m.elements() > layout.flat)
        return p.emitError("member @") << m.name << " lies outside its unit's "
                                       << layout.flat << " elements";
      layout.members.push_back(std::move(m));
    }
    program.shardLayouts.push_back(std::move(layout));
  }
  return success();
}

LogicalResult llamac::kir::lowerParams(ModelOp model, Program &program, bool quantize) {
  ConfigAttr c = model.getConfig();
  program.modelName = model.getSymName().str();
  program.vocab = c.getVocabSize();
  program.dim = c.getDim();
  program.layers = c.getNLayers();
  program.heads = c.getNHeads();
  program.kvHeads = c.getNKvHeads();
  program.headDim = c.getDim() / c.getNHeads();
  program.ffnDim = c.getFfnDim();
  program.maxSeqLen = c.getMaxSeqLen();
  program.window = c.getSlidingWindow();
  program.normEps = c.getNormEps().convertToDouble();
  program.ropeTheta = c.getRopeTheta().convertToDouble();
  program.params.clear();
  // Parameters concatenated along their first dimension ([Wq; Wk; Wv], [W1; W3]) are laid
  // out one after another in concatenation order, so that the concatenation is a view of
  // the parameter region instead of a copy at every step.
  llvm::StringMap<SmallVector<StringRef>> groupOf = concatenatedParams(model);
  // With `quantize`, the weights that only ever feed llama.linear as its weight (directly or
  // through such a concatenation) are stored as int8 rows with per-row scales.
  llvm::StringSet<> notLinearOnly;
  auto feedsLinearWeightsOnly = [](Value v) {
    return llvm::all_of(v.getUses(), [](OpOperand &use) {
      auto lin = dyn_cast<LinearOp>(use.getOwner());
      return lin && use.getOperandNumber() == 1;
    });
  };
  model.walk([&](GetParamOp g) {
    for (OpOperand &use : g.getResult().getUses()) {
      Operation *user = use.getOwner();
      bool ok = (isa<LinearOp>(user) && use.getOperandNumber() == 1) ||
                (isa<ConcatOp>(user) && cast<ConcatOp>(user).getDim() == 0 &&
                 feedsLinearWeightsOnly(user->getResult(0)));
      if (!ok)
        notLinearOnly.insert(g.getName());
    }
  });
  llvm::StringSet<> everRead;
  model.walk([&](GetParamOp g) { everRead.insert(g.getName()); });
  auto quantizable = [&](StringRef name) {
    return quantize && roleOf(name) == ParamRole::Weight && everRead.count(name) &&
           !notLinearOnly.count(name);
  };

  // Units: a concatenation group, or one parameter, in declaration order of their first.
  llvm::StringMap<ParamOp> byName;
  SmallVector<SmallVector<ParamOp>> units;
  llvm::StringSet<> placed;
  for (ParamOp p : model.getOps<ParamOp>())
    byName[p.getSymName()] = p;
  for (ParamOp p : model.getOps<ParamOp>()) {
    if (placed.count(p.getSymName()))
      continue;
    auto group = groupOf.find(p.getSymName());
    SmallVector<ParamOp> unit;
    if (group == groupOf.end()) {
      unit.push_back(p);
    } else {
      for (StringRef n : group->second)
        if (byName.count(n) && !placed.count(n))
          unit.push_back(byName[n]);
    }
    for (ParamOp q : unit)
      placed.insert(q.getSymName());
    units.push_back(std::move(unit));
  }

  int64_t offset = 0;
  for (const SmallVector<ParamOp> &unit : units) {
    bool quantizeUnit = llvm::all_of(unit, [&](ParamOp p) {
      return quantizable(p.getSymName()) && p.getTensorType().getRank() == 2;
    });
    size_t first = program.params.size();
    for (ParamOp p : unit) {
      RankedTensorType type = p.getTensorType();
      if (!type.getElementType().isF32())
        return p.emitError("the CPU back end needs f32 parameters; @")
               << p.getSymName() << " is " << type;
      Param param;
      param.name = p.getSymName().str();
      param.role = roleOf(param.name);
      param.init = paramInitOf(p.getInit());
      if (p.getInit() == InitKind::normal)
        param.std = p.getStd() ? p.getStd()->convertToDouble() : 0.0;
      param.shape.assign(type.getShape().begin(), type.getShape().end());
      param.quantized = quantizeUnit;
      param.offset = offset;
      // int8 rows of one unit are packed back to back (so that its concatenation is a view);
      // f32 tensors each start on a 64-byte boundary.
      offset = quantizeUnit ? offset + param.storageBytes()
                            : llvm::alignTo(offset + param.storageBytes(), kArenaAlignment);
      program.params.push_back(std::move(param));
    }
    if (quantizeUnit) {
      // Then the unit's scales, one per row, also back to back.
      offset = llvm::alignTo(offset, kArenaAlignment);
      for (size_t i = first; i < program.params.size(); ++i) {
        program.params[i].scaleOffset = offset;
        offset += program.params[i].shape[0] * 4;
      }
      offset = llvm::alignTo(offset, kArenaAlignment);
    }
  }
  program.paramBytes = offset;
  return lowerShardLayouts(model, program);
}

//===----------------------------------------------------------------------------------===//
// Functions
//===----------------------------------------------------------------------------------===//

namespace {

std::optional<ElemType> elemTypeOf(Type t) {
  if (t.isF32())
    return ElemType::F32;
  if (t.isBF16())
    return ElemType::BF16;
  if (t.isInteger(32))
    return ElemType::I32;
  if (t.isInteger(64) || t.isIndex())
    return ElemType::I64;
  return std::nullopt;
}

std::vector<int64_t> shapeOf(Value v) {
  auto t = cast<RankedTensorType>(v.getType());
  return std::vector<int64_t>(t.getShape().begin(), t.getShape().end());
}

int64_t numElements(Value v) { return cast<RankedTensorType>(v.getType()).getNumElements(); }
int64_t lastDim(Value v) { return cast<RankedTensorType>(v.getType()).getShape().back(); }

std::string originOf(Operation *op) {
  std::string s;
  llvm::raw_string_ostream os(s);
  os << op->getName() << " at " << op->getLoc();
  return s;
}

void scheduleCommunication(Function &f);

/// Why `l` cannot run on its buffers' element types, or "": bf16 buffers (mixed precision,
/// llamac-mixed-precision) are for the GEMMs, whose operands and result share one type, the
/// casts between f32 and bf16, FSDP's gathers of bf16 units and the copies that concatenate
/// bf16 weights. Every other kernel takes f32.
std::string bf16Problem(const Launch &l) {
  auto isBf16 = [](const BufferRef &b) { return b.type == ElemType::BF16; };
  bool any = llvm::any_of(l.inputs, isBf16) || llvm::any_of(l.outputs, isBf16);
  switch (l.kind) {
  case KernelKind::GemmNT:
  case KernelKind::GemmNN:
  case KernelKind::GemmTN:
    if (l.inputs[0].type != l.outputs[0].type || l.inputs[1].type != l.outputs[0].type)
      return std::string("code generation has no ") + kernelName(l.kind) + " on " +
             elemTypeName(l.inputs[0].type) + " x " + elemTypeName(l.inputs[1].type) +
             " -> " + elemTypeName(l.outputs[0].type) +
             "; the operands and the result of a product share one element type";
    return "";
  case KernelKind::AllGather:
  case KernelKind::CopyRows:
    if (l.inputs[0].type != l.outputs[0].type)
      return std::string("code generation has no ") + kernelName(l.kind) + " from " +
             elemTypeName(l.inputs[0].type) + " to " + elemTypeName(l.outputs[0].type);
    return "";
  case KernelKind::Cast: {
    ElemType from = l.inputs[0].type, to = l.outputs[0].type;
    if (!((from == ElemType::F32 && to == ElemType::BF16) ||
          (from == ElemType::BF16 && to == ElemType::F32)))
      return std::string("code generation casts between f32 and bf16 only, not ") +
             elemTypeName(from) + " to " + elemTypeName(to);
    return "";
  }
  default:
    if (!any)
      return "";
    return std::string("code generation has no bf16 ") + kernelName(l.kind) +
           " kernel; under mixed precision only the matrix products take bf16 (cast the "
           "operands to f32 first)";
  }
}

class FunctionLowering {
public:
  FunctionLowering(func::FuncOp fn, Program &program, const LowerOptions &options)
      : fn(fn), program(program), options(options) {}

  LogicalResult run();

private:
  LogicalResult checkTypes();
  void decideStorage();
  LogicalResult checkParamHazards();
  LogicalResult lowerOp(Operation *op);
  LogicalResult lowerCollective(Operation *op);
  Launch &launch(KernelKind kind, Operation *op) {
    Launch l;
    l.kind = kind;
    l.origin = originOf(op);
    out.launches.push_back(std::move(l));
    return out.launches.back();
  }
  BufferRef ref(Value v) { return refs.lookup(v); }
  /// The parameter a value is stored to in place, or -1.
  int64_t paramOf(Value v) const {
    auto it = storedToParam.find(v);
    return it == storedToParam.end() ? -1 : it->second;
  }
  BufferRef paramRef(int64_t index) {
    const Param &p = program.params[index];
    BufferRef b;
    b.space = Space::Param;
    b.index = index;
    b.offset = p.offset;
    b.shape = p.shape;
    if (p.quantized) {
      b.type = ElemType::I8;
      b.scaleOffset = p.scaleOffset;
    }
    return b;
  }
  BufferRef withShape(BufferRef b, std::vector<int64_t> shape) {
    b.shape = std::move(shape);
    return b;
  }

  func::FuncOp fn;
  Program &program;
  const LowerOptions &options;
  Function out;
  DenseMap<Value, BufferRef> refs;
  /// Values written straight into a parameter (index) or a result (number).
  DenseMap<Value, int64_t> storedToParam, storedToResult;
  /// Splat constants that only feed set_param: no storage; each set_param fills.
  DenseSet<Value> fillOnly;
  /// Concatenations of adjacent parameters: views of the parameter region.
  DenseSet<Value> paramViews;
  /// The i64 `pos` argument of a KV-cache function.
  BufferRef pos;
  int64_t attentionIndex = 0;
};

LogicalResult FunctionLowering::checkTypes() {
  if (!fn.getBody().hasOneBlock())
    return fn.emitError("code generation needs a function of one block");
  for (Operation &op : fn.getBody().front())
    for (Value v : op.getResults()) {
      auto t = dyn_cast<RankedTensorType>(v.getType());
      if (!t)
        continue;
      if (!t.hasStaticShape())
        return op.emitError("code generation needs static shapes; got ") << t;
      if (!elemTypeOf(t.getElementType()))
        return op.emitError("code generation supports f32, bf16, i32 and i64 tensors; got ")
               << t;
    }
  return success();
}

/// Whether `op` computes its result element by element, so that it may write over an
/// operand (the in-place accumulation into a gradient).
bool isElementwise(Operation *op) {
  return isa<AddOp, SubOp, MulOp, DivOp, MaxOp, ScaleOp, NegOp, ExpOp, LogOp, SqrtOp, RsqrtOp,
             SiLUOp, SigmoidOp, FusedElementwiseOp>(op);
}

void FunctionLowering::decideStorage() {
  Block &block = fn.getBody().front();
  DenseMap<Operation *, int64_t> position;
  int64_t i = 0;
  for (Operation &op : block)
    position[&op] = i++;

  // The last op that reads each parameter through a get_param (or a view of one).
  DenseMap<StringRef, int64_t> lastRead;
  std::function<void(Value, StringRef)> noteReads = [&](Value v, StringRef name) {
    for (Operation *user : v.getUsers()) {
      if (isView(user))
        noteReads(user->getResult(0), name);
      int64_t &last = lastRead[name];
      last = std::max(last, position[user]);
    }
  };
  for (GetParamOp g : block.getOps<GetParamOp>())
    noteReads(g.getResult(), g.getName());

  for (SetParamOp s : block.getOps<SetParamOp>()) {
    Value v = s.getValue();
    Operation *def = v.getDefiningOp();
    int64_t index = program.findParam(s.getName().str());
    if (!def || index < 0 || !v.hasOneUse() || storedToParam.count(v))
      continue;
    if (isa<arith::ConstantOp>(def))
      continue; // splat constants: fillOnly below
    if (isa<GetParamOp>(def) || isView(def) || def->getNumResults() == 0)
      continue;
    // Nothing may read the old value after the new one is being written, except the
    // producer itself when it goes element by element.
    auto reads = lastRead.find(s.getName());
    if (reads != lastRead.end()) {
      int64_t last = reads->second;
      bool producerReads = false;
      for (Value operand : def->getOperands())
        if (auto g = operand.getDefiningOp<GetParamOp>())
          producerReads |= g.getName() == s.getName();
      if (last > position[def] || (last == position[def] && !(producerReads &&
                                                               (isElementwise(def) ||
                                                                isa<MultiAdamWOp>(def)))))
        continue;
    }
    storedToParam[v] = index;
  }

  // Concatenations of parameters laid out back to back are views of the parameter region.
  for (ConcatOp c : block.getOps<ConcatOp>()) {
    if (c.getDim() != 0)
      continue;
    int64_t end = -1, scaleEnd = -1;
    bool view = true;
    for (Value in : c.getInputs()) {
      auto g = in.getDefiningOp<GetParamOp>();
      int64_t index = g ? program.findParam(g.getName().str()) : -1;
      if (index < 0) {
        view = false;
        break;
      }
      const Param &p = program.params[index];
      if (end >= 0 && (p.offset != end || p.scaleOffset != scaleEnd)) {
        view = false;
        break;
      }
      end = p.offset + p.storageBytes();
      scaleEnd = p.quantized ? p.scaleOffset + p.shape[0] * 4 : -1;
    }
    if (view)
      paramViews.insert(c.getResult());
  }

  for (arith::ConstantOp c : block.getOps<arith::ConstantOp>()) {
    auto splat = dyn_cast<SplatElementsAttr>(c.getValue());
    if (!splat || c->use_empty())
      continue;
    if (llvm::all_of(c->getUsers(), [](Operation *u) { return isa<SetParamOp>(u); }))
      fillOnly.insert(c.getResult());
  }

  // Results returned once, computed by an op of their own (not a view or a parameter).
  auto ret = cast<func::ReturnOp>(block.getTerminator());
  DenseMap<Value, int> returnCount;
  for (Value v : ret.getOperands())
    ++returnCount[v];
  for (auto [n, v] : llvm::enumerate(ret.getOperands())) {
    Operation *def = v.getDefiningOp();
    if (!def || returnCount[v] != 1 || isa<GetParamOp>(def) || isView(def) ||
        storedToParam.count(v) || fillOnly.count(v) || !needsBuffer(v) ||
        paramViews.count(v))
      continue;
    storedToResult[v] = int64_t(n);
  }
}

LogicalResult FunctionLowering::checkParamHazards() {
  // A parameter has one slot: reading it after a set_param that replaced it would see the
  // new value, where the tensor semantics say the old one.
  Block &block = fn.getBody().front();
  DenseMap<StringRef, int64_t> replacedAt;
  DenseMap<Operation *, int64_t> position;
  int64_t i = 0;
  for (Operation &op : block)
    position[&op] = i++;
  for (SetParamOp s : block.getOps<SetParamOp>()) {
    auto [it, inserted] = replacedAt.try_emplace(s.getName(), position[s]);
    (void)inserted;
    if (Operation *def = s.getValue().getDefiningOp())
      if (storedToParam.count(s.getValue()))
        it->second = std::min(it->second, position[def]);
  }
  for (GetParamOp g : block.getOps<GetParamOp>()) {
    auto it = replacedAt.find(g.getName());
    if (it == replacedAt.end())
      continue;
    SmallVector<Value> work{g.getResult()};
    while (!work.empty()) {
      Value v = work.pop_back_val();
      for (Operation *user : v.getUsers()) {
        if (isView(user) || (isa<ConcatOp>(user) && paramViews.count(user->getResult(0))))
          work.push_back(user->getResult(0));
        bool inPlace = storedToParam.count(user->getNumResults() ? user->getResult(0)
                                                                 : Value()) &&
                       position[user] == it->second;
        if (position[user] > it->second && !inPlace && !isa<SetParamOp>(user))
          return user->emitError("reads @")
                 << g.getName()
                 << " after it was replaced; the generated code keeps one copy of each "
                    "parameter";
      }
    }
  }
  return success();
}

/// Moves each parameter store (`set_param @p = v`, with the `add(get_param @p, g)` that
/// makes v when it is an accumulation) up to just after the last of its inputs is computed.
/// Autodiff and the train step emit every store at the end of the function, which keeps
/// every weight gradient alive through the whole backward: for LLaMA-7B at batch 1 x 16 the
/// arena held 27 GB, a second copy of all gradients. Moved early, each gradient dies as soon
/// as it is accumulated. Only ops whose results feed nothing but the store move, and a store
/// never moves above a read of its parameter.
static void scheduleStoresEarly(Block &block) {
  for (SetParamOp store : llvm::to_vector(block.getOps<SetParamOp>())) {
    SmallVector<Operation *> chain; // in program order, the store last
    Operation *def = store.getValue().getDefiningOp();
    if (def && def->getBlock() == &block && def->hasOneUse() && isa<AddOp>(def)) {
      for (Value operand : def->getOperands())
        if (auto g = operand.getDefiningOp<GetParamOp>())
          if (g.getName() == store.getName() && g->hasOneUse())
            chain.push_back(g);
      chain.push_back(def);
    }
    chain.push_back(store);
    // The latest op, outside the chain, that the chain reads from.
    Operation *after = nullptr;
    auto later = [](Operation *a, Operation *b) {
      return !a ? b : (!b ? a : (a->isBeforeInBlock(b) ? b : a));
    };
    for (Operation *op : chain)
      for (Value operand : op->getOperands())
        if (Operation *d = operand.getDefiningOp(); d && d->getBlock() == &block &&
                                                   !llvm::is_contained(chain, d))
          after = later(after, d);
    // Nothing else may read the parameter between the new place and the old one.
    std::function<bool(Value)> readsParam = [&](Value v) {
      Operation *d = v.getDefiningOp();
      if (auto g = dyn_cast_or_null<GetParamOp>(d))
        return g.getName() == store.getName();
      if (d && (isView(d) || isa<ConcatOp>(d)))
        return llvm::any_of(d->getOperands(), readsParam);
      return false;
    };
    bool readInBetween = false;
    Operation *from = after ? after->getNextNode() : &block.front();
    for (Operation *op = from; op && op != chain.front(); op = op->getNextNode()) {
      auto g = dyn_cast<GetParamOp>(op);
      if (!llvm::is_contained(chain, op) &&
          ((g && g.getName() == store.getName()) || llvm::any_of(op->getOperands(), readsParam)))
        readInBetween = true;
    }
    if (readInBetween || (after && chain.front()->isBeforeInBlock(after)))
      continue;
    Operation *insertAfter = after;
    for (Operation *op : chain) {
      if (insertAfter)
        op->moveAfter(insertAfter);
      else
        op->moveBefore(&block.front());
      insertAfter = op;
    }
  }
}

LogicalResult FunctionLowering::run() {
  out.name = options.name;
  if (failed(checkTypes()))
    return failure();
  scheduleStoresEarly(fn.getBody().front());
  decideStorage();
  if (failed(checkParamHazards()))
    return failure();

  Block &block = fn.getBody().front();
  FailureOr<MemoryPlan> plan = planFunction(fn, [&](Value v) {
    return storedToParam.count(v) || storedToResult.count(v) || fillOnly.count(v) ||
           paramViews.count(v);
  });
  if (failed(plan))
    return failure();
  out.arenaBytes = plan->arenaBytes;
  out.buffersBytes = plan->buffersBytes;
  out.numBuffers = int64_t(plan->buffers.size());
  for (const PlannedBuffer &b : plan->buffers) {
    BufferRef r;
    r.space = Space::Arena;
    r.offset = b.offset;
    r.type = *elemTypeOf(getElementTypeOrSelf(b.value.getType()));
    r.shape = shapeOf(b.value);
    refs[b.value] = r;
  }

  // The signature.
  for (BlockArgument arg : block.getArguments()) {
    auto t = dyn_cast<RankedTensorType>(arg.getType());
    if (!t || !t.hasStaticShape() || !elemTypeOf(t.getElementType()) ||
        t.getElementType().isBF16())
      return fn.emitError("code generation needs statically shaped f32, i32 or i64 tensor "
                          "arguments; argument ")
             << arg.getArgNumber() << " is " << arg.getType();
    TensorSig sig{"arg" + std::to_string(arg.getArgNumber()), *elemTypeOf(t.getElementType()),
                  shapeOf(arg)};
    BufferRef r;
    r.space = Space::Input;
    r.index = arg.getArgNumber();
    r.type = sig.type;
    r.shape = sig.shape;
    refs[arg] = r;
    out.inputs.push_back(sig);
  }
  if (options.kvCache) {
    TensorSig sig{"arg" + std::to_string(out.inputs.size()), ElemType::I64, {}};
    pos.space = Space::Input;
    pos.index = int64_t(out.inputs.size());
    pos.type = ElemType::I64;
    out.inputs.push_back(sig);
  }
  auto ret = cast<func::ReturnOp>(block.getTerminator());
  for (auto [n, v] : llvm::enumerate(ret.getOperands())) {
    auto t = cast<RankedTensorType>(v.getType());
    if (t.getElementType().isBF16())
      return ret.emitError("code generation returns f32, i32 or i64 tensors; result ")
             << n << " is " << t << " (cast it to f32)";
    out.outputs.push_back({"result" + std::to_string(n), *elemTypeOf(t.getElementType()),
                           shapeOf(v)});
  }
  for (auto [v, n] : storedToResult) {
    BufferRef r;
    r.space = Space::Output;
    r.index = n;
    r.type = out.outputs[n].type;
    r.shape = out.outputs[n].shape;
    refs[v] = r;
  }
  for (auto [v, index] : storedToParam)
    refs[v] = withShape(paramRef(index), shapeOf(v));

  for (Operation &op : block) {
    size_t first = out.launches.size();
    if (failed(lowerOp(&op)))
      return failure();
    for (size_t i = first; i < out.launches.size(); ++i)
      if (std::string why = bf16Problem(out.launches[i]); !why.empty())
        return op.emitError(why);
  }
  scheduleCommunication(out);
  program.functions.push_back(std::move(out));
  return success();
}

LogicalResult FunctionLowering::lowerOp(Operation *op) {
  // Views and storage-only ops.
  if (auto g = dyn_cast<GetParamOp>(op)) {
    int64_t index = program.findParam(g.getName().str());
    if (index < 0)
      return op->emitError("no parameter @") << g.getName() << " in the model";
    refs[g.getResult()] = paramRef(index);
    return success();
  }
  if (isView(op)) {
    // Reshapes keep the input's bytes; a view slice starts further into them.
    BufferRef r = withShape(ref(op->getOperand(0)), shapeOf(op->getResult(0)));
    if (auto s = dyn_cast<SliceOp>(op)) {
      auto shape = shapeOf(s.getInput());
      int64_t inner = elemBytes(r.type);
      for (size_t d = size_t(s.getDim()) + 1; d < shape.size(); ++d)
        inner *= shape[d];
      r.offset += int64_t(s.getOffset()) * inner;
    }
    refs[op->getResult(0)] = r;
    return success();
  }
  if (auto s = dyn_cast<SetParamOp>(op)) {
    Value v = s.getValue();
    int64_t index = program.findParam(s.getName().str());
    if (index < 0)
      return op->emitError("no parameter @") << s.getName() << " in the model";
    if (paramOf(v) == index)
      return success(); // already written in place
    if (fillOnly.count(v)) {
      auto splat = cast<SplatElementsAttr>(v.getDefiningOp<arith::ConstantOp>().getValue());
      Launch &l = launch(KernelKind::Fill, op);
      l.outputs = {paramRef(index)};
      l.ints = {{"n", program.params[index].elements()}};
      l.floats = {{"value", splat.getSplatValue<APFloat>().convertToDouble()}};
      return success();
    }
    Launch &l = launch(KernelKind::Copy, op);
    l.inputs = {ref(v)};
    l.outputs = {paramRef(index)};
    l.ints = {{"n", numElements(v)}};
    return success();
  }
  if (auto r = dyn_cast<func::ReturnOp>(op)) {
    for (auto [n, v] : llvm::enumerate(r.getOperands())) {
      if (storedToResult.count(v) && storedToResult.lookup(v) == int64_t(n))
        continue;
      BufferRef dst;
      dst.space = Space::Output;
      dst.index = int64_t(n);
      dst.type = out.outputs[n].type;
      dst.shape = out.outputs[n].shape;
      Launch &l = launch(KernelKind::Copy, op);
      l.inputs = {ref(v)};
      l.outputs = {dst};
      l.ints = {{"n", numElements(v) * (dst.type == ElemType::I64 ? 2 : 1)}};
    }
    return success();
  }
  if (auto c = dyn_cast<arith::ConstantOp>(op)) {
    if (fillOnly.count(c.getResult()))
      return success();
    auto splat = dyn_cast<SplatElementsAttr>(c.getValue());
    if (!splat || !splat.getElementType().isF32())
      return op->emitError("the CPU back end supports only f32 splat constants");
    Launch &l = launch(KernelKind::Fill, op);
    l.outputs = {ref(c.getResult())};
    l.ints = {{"n", numElements(c.getResult())}};
    l.floats = {{"value", splat.getSplatValue<APFloat>().convertToDouble()}};
    return success();
  }

  // Kernels.
  if (auto e = dyn_cast<EmbeddingOp>(op)) {
    Launch &l = launch(KernelKind::Embedding, op);
    l.inputs = {ref(e.getTable()), ref(e.getTokens())};
    l.outputs = {ref(e.getResult())};
    auto table = cast<RankedTensorType>(e.getTable().getType());
    l.ints = {{"n", numElements(e.getTokens())},
              {"dim", table.getShape()[1]},
              {"vocab", table.getShape()[0]}};
    return success();
  }
  if (auto e = dyn_cast<EmbeddingGradOp>(op)) {
    Launch &l = launch(KernelKind::EmbeddingGrad, op);
    l.inputs = {ref(e.getTokens()), ref(e.getGrad())};
    l.outputs = {ref(e.getResult())};
    l.ints = {{"n", numElements(e.getTokens())},
              {"dim", lastDim(e.getGrad())},
              {"vocab", int64_t(e.getVocab())}};
    return success();
  }
  if (auto lin = dyn_cast<LinearOp>(op)) {
    int64_t k = lastDim(lin.getInput());
    bool q8 = ref(lin.getWeight()).type == ElemType::I8;
    Launch &l = launch(q8 ? KernelKind::GemmNTQ8 : KernelKind::GemmNT, op);
    l.inputs = {ref(lin.getInput()), ref(lin.getWeight())};
    l.outputs = {ref(lin.getResult())};
    l.ints = {{"M", numElements(lin.getInput()) / k},
              {"N", cast<RankedTensorType>(lin.getWeight().getType()).getShape()[0]},
              {"K", k},
              {"accumulate", 0}};
    if (q8)
      l.ints.push_back({"rows_per_task", 32}); // a tunable (codegen/Tunables.cpp)
    return success();
  }
  if (auto mm = dyn_cast<MatmulOp>(op)) {
    auto rhs = cast<RankedTensorType>(mm.getRhs().getType());
    if (rhs.getRank() != 2)
      return op->emitError("the CPU back end supports llama.matmul with a 2-D right-hand "
                           "side only");
    int64_t k = lastDim(mm.getLhs());
    bool t = mm.getTransposeRhs();
    Launch &l = launch(t ? KernelKind::GemmNT : KernelKind::GemmNN, op);
    l.inputs = {ref(mm.getLhs()), ref(mm.getRhs())};
    l.outputs = {ref(mm.getResult())};
    l.ints = {{"M", numElements(mm.getLhs()) / k},
              {"N", t ? rhs.getShape()[0] : rhs.getShape()[1]},
              {"K", k},
              {"accumulate", 0}};
    return success();
  }
  if (auto wg = dyn_cast<LinearWeightGradOp>(op)) {
    int64_t n = lastDim(wg.getGrad()), k = lastDim(wg.getInput());
    Launch &l = launch(KernelKind::GemmTN, op);
    l.inputs = {ref(wg.getGrad()), ref(wg.getInput())};
    l.outputs = {ref(wg.getResult())};
    l.ints = {{"M", n}, {"N", k}, {"K", numElements(wg.getGrad()) / n}, {"accumulate", 0}};
    return success();
  }
  if (auto n = dyn_cast<RMSNormOp>(op)) {
    int64_t dim = lastDim(n.getInput());
    Launch &l = launch(KernelKind::RMSNorm, op);
    l.inputs = {ref(n.getInput()), ref(n.getWeight())};
    l.outputs = {ref(n.getResult())};
    l.ints = {{"rows", numElements(n.getInput()) / dim}, {"dim", dim}};
    l.floats = {{"eps", n.getEpsAttr().getValueAsDouble()}};
    return success();
  }
  if (auto n = dyn_cast<RMSNormGradOp>(op)) {
    int64_t dim = lastDim(n.getInput());
    Launch &l = launch(KernelKind::RMSNormGrad, op);
    l.inputs = {ref(n.getInput()), ref(n.getWeight()), ref(n.getGrad())};
    l.outputs = {ref(n.getInputGrad()), ref(n.getWeightGrad())};
    l.ints = {{"rows", numElements(n.getInput()) / dim}, {"dim", dim}};
    l.floats = {{"eps", n.getEpsAttr().getValueAsDouble()}};
    return success();
  }
  if (auto n = dyn_cast<AddRMSNormOp>(op)) {
    int64_t dim = lastDim(n.getInput());
    Launch &l = launch(KernelKind::AddRMSNorm, op);
    l.inputs = {ref(n.getInput()), ref(n.getResidual()), ref(n.getWeight())};
    l.outputs = {ref(n.getSum()), ref(n.getNormed())};
    l.ints = {{"rows", numElements(n.getInput()) / dim}, {"dim", dim}};
    l.floats = {{"eps", n.getEpsAttr().getValueAsDouble()}};
    return success();
  }
  if (auto n = dyn_cast<AddRMSNormGradOp>(op)) {
    int64_t dim = lastDim(n.getSum());
    Launch &l = launch(KernelKind::AddRMSNormGrad, op);
    l.inputs = {ref(n.getSum()), ref(n.getWeight()), ref(n.getNormedGrad()),
                ref(n.getSumGrad())};
    l.outputs = {ref(n.getInputGrad()), ref(n.getWeightGrad())};
    l.ints = {{"rows", numElements(n.getSum()) / dim}, {"dim", dim}};
    l.floats = {{"eps", n.getEpsAttr().getValueAsDouble()}};
    return success();
  }
  if (auto s = dyn_cast<SwiGLUOp>(op)) {
    int64_t f = lastDim(s.getResult());
    Launch &l = launch(KernelKind::SwiGLU, op);
    l.inputs = {ref(s.getInput())};
    l.outputs = {ref(s.getResult())};
    l.ints = {{"rows", numElements(s.getResult()) / f}, {"F", f}};
    return success();
  }
  if (auto s = dyn_cast<SwiGLUGradOp>(op)) {
    int64_t f = lastDim(s.getGrad());
    Launch &l = launch(KernelKind::SwiGLUGrad, op);
    l.inputs = {ref(s.getInput()), ref(s.getGrad())};
    l.outputs = {ref(s.getResult())};
    l.ints = {{"rows", numElements(s.getGrad()) / f}, {"F", f}};
    return success();
  }
  if (auto r = dyn_cast<QKVRoPEOp>(op)) {
    if (r.getOffset())
      return op->emitError("the CPU back end takes RoPE offsets from the KV-cache position "
                           "only");
    auto q = cast<RankedTensorType>(r.getQ().getType()).getShape();
    auto k = cast<RankedTensorType>(r.getK().getType()).getShape();
    Launch &l = launch(KernelKind::QKVRoPE, op);
    l.inputs = {ref(r.getInput())};
    if (options.kvCache)
      l.inputs.push_back(pos);
    l.outputs = {ref(r.getQ()), ref(r.getK()), ref(r.getV())};
    l.ints = {{"B", q[0]}, {"T", q[1]}, {"H", q[2]}, {"Hkv", k[2]}, {"D", q[3]}};
    l.floats = {{"theta", r.getThetaAttr().getValueAsDouble()}};
    return success();
  }
  if (auto r = dyn_cast<QKVRoPEGradOp>(op)) {
    if (r.getOffset())
      return op->emitError("the CPU back end does not support RoPE offsets in training");
    auto q = cast<RankedTensorType>(r.getQGrad().getType()).getShape();
    auto k = cast<RankedTensorType>(r.getKGrad().getType()).getShape();
    Launch &l = launch(KernelKind::QKVRoPEGrad, op);
    l.inputs = {ref(r.getQGrad()), ref(r.getKGrad()), ref(r.getVGrad())};
    l.outputs = {ref(r.getResult())};
    l.ints = {{"B", q[0]}, {"T", q[1]}, {"H", q[2]}, {"Hkv", k[2]}, {"D", q[3]}};
    l.floats = {{"theta", r.getThetaAttr().getValueAsDouble()}};
    return success();
  }
  if (auto a = dyn_cast<FlashAttentionOp>(op)) {
    auto q = cast<RankedTensorType>(a.getQuery().getType()).getShape();
    auto k = cast<RankedTensorType>(a.getKey().getType()).getShape();
    double scale = a.getScaleAttr() ? a.getScaleAttr().getValueAsDouble()
                                    : 1.0 / std::sqrt(double(q[3]));
    int64_t window = a.getWindow() ? int64_t(*a.getWindow()) : 0;
    if (options.kvCache) {
      if (!a.getCausal() || q[0] != 1)
        return op->emitError("KV-cache inference needs causal attention over one sequence");
      if (!a.getLse().use_empty())
        return op->emitError("KV-cache inference does not keep the attention log-sum-exp");
      int64_t capacity = window > 0 ? std::min(window, program.maxSeqLen) : program.maxSeqLen;
      int64_t sliceBytes = capacity * k[2] * k[3] * 4;
      BufferRef ck, cv;
      ck.space = cv.space = Space::Cache;
      ck.shape = cv.shape = {capacity, k[2], k[3]};
      ck.offset = (2 * attentionIndex) * sliceBytes;
      cv.offset = (2 * attentionIndex + 1) * sliceBytes;
      ++attentionIndex;
      program.cacheBytes = std::max(program.cacheBytes, cv.offset + sliceBytes);
      Launch &l = launch(KernelKind::AttentionKVCache, op);
      l.inputs = {ref(a.getQuery()), ref(a.getKey()), ref(a.getValue()), pos};
      l.outputs = {ref(a.getResult()), ck, cv};
      l.ints = {{"capacity", capacity}, {"C", q[1]},      {"H", q[2]},
                {"Hkv", k[2]},          {"D", q[3]},      {"window", window}};
      l.floats = {{"scale", scale}};
      return success();
    }
    Launch &l = launch(KernelKind::FlashAttention, op);
    l.inputs = {ref(a.getQuery()), ref(a.getKey()), ref(a.getValue())};
    l.outputs = {ref(a.getResult()), ref(a.getLse())};
    l.ints = {{"B", q[0]},      {"T", q[1]},
              {"S", k[1]},      {"H", q[2]},
              {"Hkv", k[2]},    {"D", q[3]},
              {"causal", a.getCausal()}, {"window", window},
              {"block_q", int64_t(a.getBlockQ())}, {"block_k", int64_t(a.getBlockK())}};
    l.floats = {{"scale", scale}};
    return success();
  }
  if (auto a = dyn_cast<FlashAttentionGradOp>(op)) {
    auto q = cast<RankedTensorType>(a.getQuery().getType()).getShape();
    auto k = cast<RankedTensorType>(a.getKey().getType()).getShape();
    double scale = a.getScaleAttr() ? a.getScaleAttr().getValueAsDouble()
                                    : 1.0 / std::sqrt(double(q[3]));
    Launch &l = launch(KernelKind::FlashAttentionGrad, op);
    l.inputs = {ref(a.getQuery()), ref(a.getKey()),  ref(a.getValue()),
                ref(a.getOutput()), ref(a.getLse()), ref(a.getGrad())};
    l.outputs = {ref(a.getQueryGrad()), ref(a.getKeyGrad()), ref(a.getValueGrad())};
    l.ints = {{"B", q[0]},      {"T", q[1]},
              {"S", k[1]},      {"H", q[2]},
              {"Hkv", k[2]},    {"D", q[3]},
              {"causal", a.getCausal()},
              {"window", a.getWindow() ? int64_t(*a.getWindow()) : 0},
              {"block_q", int64_t(a.getBlockQ())}, {"block_k", int64_t(a.getBlockK())}};
    l.floats = {{"scale", scale}};
    return success();
  }
  if (auto ce = dyn_cast<FusedCrossEntropyOp>(op)) {
    int64_t v = lastDim(ce.getLogits());
    Launch &l = launch(KernelKind::CrossEntropy, op);
    l.inputs = {ref(ce.getLogits()), ref(ce.getTargets())};
    l.outputs = {ref(ce.getLoss()), ref(ce.getLse())};
    l.ints = {{"rows", numElements(ce.getLogits()) / v},
              {"vocab", v},
              {"ignore_index", int64_t(ce.getIgnoreIndex())}};
    return success();
  }
  if (auto ce = dyn_cast<FusedCrossEntropyGradOp>(op)) {
    int64_t v = lastDim(ce.getLogits());
    Launch &l = launch(KernelKind::CrossEntropyGrad, op);
    l.inputs = {ref(ce.getLogits()), ref(ce.getTargets()), ref(ce.getLse()),
                ref(ce.getGrad())};
    l.outputs = {ref(ce.getResult())};
    l.ints = {{"rows", numElements(ce.getLogits()) / v},
              {"vocab", v},
              {"ignore_index", int64_t(ce.getIgnoreIndex())}};
    return success();
  }
  if (auto c = dyn_cast<ConcatOp>(op)) {
    if (paramViews.count(c.getResult())) {
      refs[c.getResult()] = withShape(ref(c.getInputs()[0]), shapeOf(c.getResult()));
      return success();
    }
    auto shape = shapeOf(c.getResult());
    int64_t dim = int64_t(c.getDim());
    int64_t rows = 1, inner = 1;
    for (int64_t d = 0; d < dim; ++d)
      rows *= shape[d];
    for (int64_t d = dim + 1; d < int64_t(shape.size()); ++d)
      inner *= shape[d];
    int64_t outCols = shape[dim] * inner, column = 0;
    for (Value in : c.getInputs()) {
      int64_t cols = shapeOf(in)[dim] * inner;
      BufferRef dst = ref(c.getResult());
      dst.offset += column * elemBytes(dst.type);
      dst.shape = {rows, cols};
      Launch &l = launch(KernelKind::CopyRows, op);
      l.inputs = {ref(in)};
      l.outputs = {dst};
      l.ints = {{"rows", rows}, {"cols", cols}, {"in_stride", cols}, {"out_stride", outCols}};
      column += cols;
    }
    return success();
  }
  if (auto s = dyn_cast<SliceOp>(op)) {
    auto shape = shapeOf(s.getInput());
    int64_t dim = int64_t(s.getDim());
    int64_t rows = 1, inner = 1;
    for (int64_t d = 0; d < dim; ++d)
      rows *= shape[d];
    for (int64_t d = dim + 1; d < int64_t(shape.size()); ++d)
      inner *= shape[d];
    BufferRef src = ref(s.getInput());
    src.offset += int64_t(s.getOffset()) * inner * elemBytes(src.type);
    int64_t cols = int64_t(s.getSize()) * inner;
    src.shape = {rows, cols};
    Launch &l = launch(KernelKind::CopyRows, op);
    l.inputs = {src};
    l.outputs = {ref(s.getResult())};
    l.ints = {{"rows", rows}, {"cols", cols}, {"in_stride", shape[dim] * inner},
              {"out_stride", cols}};
    return success();
  }
  if (auto c = dyn_cast<CastOp>(op)) {
    Launch &l = launch(KernelKind::Cast, op);
    l.inputs = {ref(c.getInput())};
    l.outputs = {ref(c.getResult())};
    l.ints = {{"n", numElements(c.getResult())}};
    return success();
  }
  if (isa<AddOp, SubOp, MulOp, DivOp, MaxOp>(op)) {
    int64_t code = isa<AddOp>(op) ? 0 : isa<SubOp>(op) ? 1 : isa<MulOp>(op) ? 2
                                                           : isa<DivOp>(op) ? 3 : 4;
    Launch &l = launch(KernelKind::Binary, op);
    l.inputs = {ref(op->getOperand(0)), ref(op->getOperand(1))};
    l.outputs = {ref(op->getResult(0))};
    l.ints = {{"op", code}, {"n", numElements(op->getResult(0))},
              {"b_size", numElements(op->getOperand(1))}};
    return success();
  }
  if (isa<NegOp, ExpOp, LogOp, SqrtOp, RsqrtOp, SiLUOp, SigmoidOp>(op)) {
    int64_t code = isa<NegOp>(op)     ? 0
                   : isa<ExpOp>(op)   ? 1
                   : isa<LogOp>(op)   ? 2
                   : isa<SqrtOp>(op)  ? 3
                   : isa<RsqrtOp>(op) ? 4
                   : isa<SiLUOp>(op)  ? 5
                                      : 6;
    Launch &l = launch(KernelKind::Unary, op);
    l.inputs = {ref(op->getOperand(0))};
    l.outputs = {ref(op->getResult(0))};
    l.ints = {{"op", code}, {"n", numElements(op->getResult(0))}};
    return success();
  }
  if (auto f = dyn_cast<FusedElementwiseOp>(op)) {
    // The body's scalar ops, in block order, become the launch's body (KernelIR.h).
    Block &body = f.getBody().front();
    std::vector<ScalarOp> scalars;
    DenseMap<Value, int> index;
    for (auto [k, arg] : llvm::enumerate(body.getArguments())) {
      index[arg] = int(scalars.size());
      scalars.push_back({ScalarOp::Input, int(k)});
    }
    for (Operation &s : body.without_terminator()) {
      auto operand = [&](unsigned k) { return index.lookup(s.getOperand(k)); };
      std::optional<ScalarOp> o =
          llvm::TypeSwitch<Operation *, std::optional<ScalarOp>>(&s)
              .Case([&](arith::AddFOp) { return ScalarOp{ScalarOp::Add, operand(0), operand(1)}; })
              .Case([&](arith::SubFOp) { return ScalarOp{ScalarOp::Sub, operand(0), operand(1)}; })
              .Case([&](arith::MulFOp) { return ScalarOp{ScalarOp::Mul, operand(0), operand(1)}; })
              .Case([&](arith::DivFOp) { return ScalarOp{ScalarOp::Div, operand(0), operand(1)}; })
              .Case([&](arith::MaximumFOp) {
                return ScalarOp{ScalarOp::Maximum, operand(0), operand(1)};
              })
              .Case([&](arith::NegFOp) { return ScalarOp{ScalarOp::Neg, operand(0)}; })
              .Case([&](math::ExpOp) { return ScalarOp{ScalarOp::Exp, operand(0)}; })
              .Case([&](math::LogOp) { return ScalarOp{ScalarOp::Log, operand(0)}; })
              .Case([&](math::SqrtOp) { return ScalarOp{ScalarOp::Sqrt, operand(0)}; })
              .Case([&](math::RsqrtOp) { return ScalarOp{ScalarOp::Rsqrt, operand(0)}; })
              .Case([&](arith::ConstantOp c) -> std::optional<ScalarOp> {
                if (auto v = dyn_cast<FloatAttr>(c.getValue()))
                  return ScalarOp{ScalarOp::Constant, -1, -1, v.getValueAsDouble()};
                return std::nullopt;
              })
              .Default([](Operation *) { return std::nullopt; });
      if (!o)
        return s.emitError("code generation has no scalar form of '")
               << s.getName() << "' in a fused_elementwise body";
      index[s.getResult(0)] = int(scalars.size());
      scalars.push_back(*o);
    }
    // The yielded value last: max(y, y) is y exactly (NaN and -0 included) when the body
    // yields an earlier entry or an argument.
    int yielded = index.lookup(cast<YieldOp>(body.getTerminator()).getValue());
    if (yielded != int(scalars.size()) - 1)
      scalars.push_back({ScalarOp::Maximum, yielded, yielded});
    Launch &l = launch(KernelKind::Pointwise, op);
    for (Value v : f.getInputs())
      l.inputs.push_back(ref(v));
    l.outputs = {ref(f.getResult())};
    l.ints = {{"n", numElements(f.getResult())}};
    l.body = std::move(scalars);
    return success();
  }
  if (isa<shard::AllGatherOp, shard::ReduceScatterOp, shard::AllReduceOp>(op))
    return lowerCollective(op);
  if (auto s = dyn_cast<ScaleOp>(op)) {
    Launch &l = launch(KernelKind::Scale, op);
    l.inputs = {ref(s.getInput())};
    l.outputs = {ref(s.getResult())};
    l.ints = {{"n", numElements(s.getResult())}};
    l.floats = {{"factor", s.getFactorAttr().getValueAsDouble()}};
    return success();
  }
  if (auto s = dyn_cast<LRScheduleOp>(op)) {
    Launch &l = launch(KernelKind::LRSchedule, op);
    l.inputs = {ref(s.getStep()), ref(s.getPeak()), ref(s.getTotal())};
    l.outputs = {ref(s.getResult())};
    l.ints = {{"warmup", int64_t(s.getWarmup())}};
    l.floats = {{"floor", s.getFloorAttr().getValueAsDouble()}};
    return success();
  }
  if (auto g = dyn_cast<GradClipOp>(op)) {
    Launch &l = launch(KernelKind::GradClip, op);
    for (Value grad : g.getGrads())
      l.inputs.push_back(ref(grad));
    l.inputs.push_back(ref(g.getCount()));
    l.outputs = {ref(g.getCoefficient()), ref(g.getNorm())};
    l.floats = {{"max_norm", g.getMaxNormAttr().getValueAsDouble()}};
    return success();
  }
  if (auto a = dyn_cast<MultiAdamWOp>(op)) {
    size_t n = a.getParams().size();
    ArrayRef<double> decays = a.getWeightDecays();
    for (size_t i = 0; i < n; ++i) {
      Value results[3] = {a.getResults()[i], a.getResults()[n + i], a.getResults()[2 * n + i]};
      Value state[3] = {a.getParams()[i], a.getMs()[i], a.getVs()[i]};
      for (int j = 0; j < 3; ++j) {
        BufferRef s = ref(state[j]), r = ref(results[j]);
        if (s.space != Space::Param || r.space != Space::Param || s.index != r.index)
          return op->emitError("the CPU back end updates AdamW state in place: result ")
                 << (j * n + i) << " must be stored to the parameter it updates";
      }
      Launch &l = launch(KernelKind::AdamW, op);
      l.inputs = {ref(state[0]), ref(a.getGrads()[i]), ref(state[1]), ref(state[2]),
                  ref(a.getLr()), ref(a.getStep()), ref(a.getGradScale())};
      l.outputs = {ref(results[0]), ref(results[1]), ref(results[2])};
      l.ints = {{"n", numElements(state[0])}};
      l.floats = {{"beta1", a.getBeta1Attr().getValueAsDouble()},
                  {"beta2", a.getBeta2Attr().getValueAsDouble()},
                  {"eps", a.getEpsAttr().getValueAsDouble()},
                  {"weight_decay", decays[i]}};
    }
    return success();
  }
  return op->emitError("code generation has no kernel for '") << op->getName() << "'";
}

/// The shard dialect's collectives as llamac-plan-fsdp uses them, each along one axis of its
/// grid: gathers and reduce-scatters of flat f32 units, sums of f32 values.
LogicalResult FunctionLowering::lowerCollective(Operation *op) {
  Value in = op->getOperand(0), result = op->getResult(0);
  auto inType = cast<RankedTensorType>(in.getType());
  // Gathers may move bf16 weights (mixed precision); sums are of f32.
  if (!inType.getElementType().isF32() &&
      !(inType.getElementType().isBF16() && isa<shard::AllGatherOp>(op)))
    return op->emitError("code generation supports collectives of f32 tensors, and gathers "
                         "of bf16 ones; got ")
           << inType;
  if (program.fsdpRanks < 1)
    return op->emitError("a collective in a program with no llama.fsdp parameters: "
                         "code generation knows the ranks from llamac-plan-fsdp's layouts");
  auto axes = op->getAttrOfType<DenseI16ArrayAttr>("grid_axes");
  if (!axes || axes.size() != 1 || axes[0] < 0 || axes[0] >= int64_t(program.fsdpGrid.size()))
    return op->emitError("code generation supports collectives along one axis of the ")
           << program.fsdpGrid.size() << "-D grid";
  const int64_t axis = axes[0], ranks = program.fsdpGrid[size_t(axis)];
  // The unit a collective moves, for messages: the parameter gathered, or the gradient shard
  // that the reduced block ends up added to.
  int64_t unit = -1;
  Value sent = in;
  if (auto c = in.getDefiningOp<CastOp>()) // a shard narrowed to bf16 (mixed precision)
    sent = c.getInput();
  if (auto g = sent.getDefiningOp<GetParamOp>())
    unit = program.findParam(g.getName().str());
  std::function<void(Value, int)> findStore = [&](Value v, int depth) {
    for (Operation *user : v.getUsers()) {
      if (auto s = dyn_cast<SetParamOp>(user))
        unit = program.findParam(s.getName().str());
      else if (depth > 0 && user->getNumResults() == 1)
        findStore(user->getResult(0), depth - 1);
    }
  };
  if (unit < 0)
    findStore(result, 2);
  Launch *l = nullptr;
  if (auto g = dyn_cast<shard::AllGatherOp>(op)) {
    // What the unit's gathers move per element (a unit no function gathers keeps 0).
    if (unit >= 0 && program.params[size_t(unit)].shard >= 0) {
      ShardLayout &layout = program.shardLayouts[size_t(program.params[size_t(unit)].shard)];
      int64_t bytes = inType.getElementTypeBitWidth() / 8;
      layout.gatherBytes = std::max(layout.gatherBytes, bytes);
    }
    if (inType.getRank() != 1 || g.getGatherAxis().getSExtValue() != 0 ||
        numElements(result) != numElements(in) * ranks)
      return op->emitError("code generation gathers flat units over the ")
             << ranks << "-rank grid only";
    l = &launch(KernelKind::AllGather, op);
    l->ints = {{"n", numElements(in)}, {"axis", axis}, {"ranks", ranks}, {"unit", unit}};
  } else if (auto r = dyn_cast<shard::ReduceScatterOp>(op)) {
    if (inType.getRank() != 1 || r.getScatterAxis().getSExtValue() != 0 ||
        r.getReduction() != shard::ReductionKind::Sum ||
        numElements(in) != numElements(result) * ranks)
      return op->emitError("code generation reduce-scatters (sum) flat units over the ")
             << ranks << "-rank grid only";
    l = &launch(KernelKind::ReduceScatter, op);
    l->ints = {{"n", numElements(result)}, {"axis", axis}, {"ranks", ranks}, {"unit", unit}};
  } else {
    if (cast<shard::AllReduceOp>(op).getReduction() != shard::ReductionKind::Sum)
      return op->emitError("code generation supports all_reduce with sum only");
    l = &launch(KernelKind::AllReduce, op);
    l->ints = {{"n", numElements(in)}, {"axis", axis}, {"ranks", ranks}, {"unit", unit}};
  }
  l->inputs = {ref(in)};
  l->outputs = {ref(result)};
  return success();
}

/// Whether two buffers may share memory.
bool overlaps(const BufferRef &a, const BufferRef &b) {
  bool sameRegion = a.space == b.space &&
                    (a.space == Space::Arena || a.space == Space::Param ||
                     a.space == Space::Cache || a.index == b.index);
  return sameRegion && a.offset < b.offset + b.bytes() && b.offset < a.offset + a.bytes();
}

/// Collectives go on stream 1, the communication stream, so that a unit's gather (issued
/// ahead by the prefetch) and a gradient's reduce-scatter overlap the compute on stream 0;
/// so does the narrowing of a shard to bf16 right before its gather (mixed precision), which
/// otherwise would tie the compute stream to the gathers through the arena bytes the plan
/// lets consecutive shard copies share. Ordering is by events only where memory demands it:
/// a communication launch first waits for the last earlier compute launch that touches its
/// buffers (the producer of its input, or a launch still using arena memory the plan lets it
/// reuse); a later compute launch that touches them waits for it. Communication launches
/// keep their program order on stream 1.
void scheduleCommunication(Function &f) {
  int nextEvent = 0;
  auto touches = [](const Launch &l, const Launch &c) {
    for (const BufferRef *x : {&c.inputs[0], &c.outputs[0]}) {
      for (const BufferRef &b : l.inputs)
        if (overlaps(b, *x))
          return true;
      for (const BufferRef &b : l.outputs)
        if (overlaps(b, *x))
          return true;
    }
    return false;
  };
  std::vector<bool> comm(f.launches.size(), false);
  for (size_t i = 0; i < f.launches.size(); ++i) {
    const Launch &l = f.launches[i];
    comm[i] = isCollective(l.kind) ||
              (l.kind == KernelKind::Cast && l.inputs[0].space == Space::Param &&
               i + 1 < f.launches.size() && isCollective(f.launches[i + 1].kind) &&
               overlaps(l.outputs[0], f.launches[i + 1].inputs[0]));
  }
  for (size_t i = 0; i < f.launches.size(); ++i) {
    if (!comm[i])
      continue;
    f.launches[i].stream = 1;
    for (size_t j = i; j-- > 0;) {
      Launch &before = f.launches[j];
      if (before.stream == 0 && touches(before, f.launches[i])) {
        if (before.records < 0)
          before.records = nextEvent++;
        f.launches[i].waits.push_back(before.records);
        break;
      }
    }
    for (size_t j = i + 1; j < f.launches.size(); ++j) {
      Launch &after = f.launches[j];
      if (!comm[j] && touches(after, f.launches[i])) {
        if (f.launches[i].records < 0)
          f.launches[i].records = nextEvent++;
        after.waits.push_back(f.launches[i].records);
        break;
      }
    }
  }
}

} // namespace

LogicalResult llamac::kir::lowerFunction(func::FuncOp fn, Program &program,
                                         const LowerOptions &options) {
  return FunctionLowering(fn, program, options).run();
}
