//===- PlanFsdp.cpp - llamac-plan-fsdp ---------------------------------------------===//
//
// Fully sharded data parallelism, planned in the IR of the training program (after
// llamac-train-step, before the fusions), for `ranks` data-parallel ranks on the 1-D grid
// @fsdp:
//
//  - Units. The weights are grouped into flat units: one per transformer layer (its
//    matrices), one per top-level matrix (the embedding, the output projection), and one for
//    every norm gain together (they are not weight-decayed, so they cannot share a unit with
//    matrices that are). A unit is its members flattened and concatenated in declaration
//    order, zero-padded to a multiple of `ranks`; rank r holds elements [r S, (r+1) S) of it,
//    S = padded / ranks, as the parameter `fsdp.<unit>`, with its gradient accumulator and
//    AdamW moments `fsdp.grad.<unit>`, `fsdp.adamw.m.<unit>`, `fsdp.adamw.v.<unit>`. The
//    attribute `llama.fsdp` of each shard records the members with their offsets, shapes
//    and initialisers, for checkpoints and initialisation.
//  - Gathers. In every function that reads weights, the unit is all-gathered
//    (shard.all_gather) just before the first op that uses one of its members, and each
//    member is a slice (and split_dim) of the gathered buffer. With reshard-after-forward,
//    the backward (ops marked llama.backward) gathers the unit again before its first use
//    there, so the forward's copy dies after its last forward use and the memory plan
//    reuses it. With `prefetch` = d, a unit's gather is issued before the first use of the
//    unit d places earlier in the phase's order of use (the next layer's parameters arrive
//    while this layer computes, in the forward's order and in the backward's reverse one);
//    the gathered buffers live correspondingly longer, which the memory plan accounts for.
//  - Gradients. @train_grad's accumulation `grad.<w> += g_w` becomes, per unit, the
//    flattened, concatenated and padded gradients reduce-scattered (sum) across the ranks
//    and added to the rank's gradient shard.
//  - Update. @train_update is rebuilt on the shards: the global gradient norm from the
//    ranks' sums of squares (shard.all_reduce), clipping, the schedule, and AdamW on the
//    rank's shard only. Padding holds zeros and its gradient is zero, so it stays zero.
//  - Hybrid sharding (`replicas` = R > 1): the grid is 2-D, R x G with G = ranks / R (rank
//    r at (r / G, r mod G), so a group is G consecutive ranks: one node's GPUs). Units are
//    sharded over the G ranks of a group (axis 1) and replicated across the R groups: the
//    gathers, reduce-scatters and the norm's sum run along axis 1, and each reduced gradient
//    shard is then summed over its R replicas (shard.all_reduce along axis 0) before it is
//    accumulated. Memory per rank is 1/G of the state; the traffic between groups is one
//    all-reduce of 1/G of the gradients.
//
// The gradient function @loss_grad (per-weight gradients by name) is removed: @train_grad is
// its sharded form, and its loss is summed over the ranks' micro-batches (shard.all_reduce),
// so that every rank returns the global figure. (@loss, for validation, stays per rank: the
// driver shares the batches out and sums the losses.) `report` prints the per-rank memory of parameters,
// gradients and optimizer state against the unsharded program's, and the largest gathered
// unit.
//
//===----------------------------------------------------------------------------------===//
#include "dialects/llama/LlamaOps.h"
#include "passes/MemoryPlan.h"
#include "passes/Passes.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Dialect/Shard/IR/ShardOps.h"
#include "mlir/IR/Builders.h"
#include "llvm/ADT/DenseMap.h"
#include "llvm/ADT/StringMap.h"
#include "llvm/ADT/StringSet.h"
#include "llvm/Support/Format.h"
#include "llvm/Support/raw_ostream.h"

#include <cctype>

namespace llamac {
#define GEN_PASS_DEF_LLAMAPLANFSDP
#include "passes/Passes.h.inc"
} // namespace llamac

using namespace mlir;
using namespace llamac;
using namespace llamac::llama;

namespace {

constexpr const char *kGrid = "fsdp";

struct Member {
  mutable ParamOp param;
  int64_t offset = 0; ///< in the unit's flat buffer
  int64_t numel = 0;
};

struct Unit {
  std::string name;
  bool decayed = true; ///< its members are matrices (weight-decayed)
  SmallVector<Member> members;
  int64_t flat = 0, padded = 0, shard = 0;
};

/// "layers.3.attention.wq" -> "layers.3"; "output" -> "output".
std::string unitOf(ParamOp p) {
  if (p.getTensorType().getRank() < 2)
    return "norms";
  StringRef name = p.getSymName();
  size_t start = 0;
  while (true) {
    size_t dot = name.find('.', start);
    if (dot == StringRef::npos)
      return name.str();
    size_t next = name.find('.', dot + 1);
    StringRef part = name.slice(dot + 1, next == StringRef::npos ? name.size() : next);
    if (!part.empty() && llvm::all_of(part, [](char c) { return isdigit(c); }))
      return name.substr(0, next == StringRef::npos ? name.size() : next).str();
    start = dot + 1;
  }
}

RankedTensorType flatType(int64_t n, MLIRContext *ctx, bool bf16 = false) {
  return RankedTensorType::get({n}, bf16 ? Type(BFloat16Type::get(ctx)) : Float32Type::get(ctx));
}

/// The units of the model's weights (not its optimizer state), in declaration order of their
/// first member, unpadded; `memberOf` maps a weight to (unit, member). Within a unit, weights
/// that a function concatenates along their first dimension ([Wq; Wk; Wv], [W1; W3]) are
/// placed back to back in concatenation order, so that the concatenation of their gathered
/// views is a view too (isView), not a copy.
LogicalResult collectUnits(ModelOp model, std::vector<Unit> &units,
                           llvm::StringMap<std::pair<size_t, size_t>> &memberOf) {
  llvm::StringMap<SmallVector<StringRef>> groupOf = concatenatedParams(model);
  llvm::StringMap<size_t> unitIndex;
  for (ParamOp p : model.getOps<ParamOp>()) {
    if (p.getState())
      continue;
    if (!p.getTensorType().getElementType().isF32() || !p.getTensorType().hasStaticShape())
      return p.emitError("llamac-plan-fsdp shards static f32 weights only");
    std::string u = unitOf(p);
    auto [it, fresh] = unitIndex.try_emplace(u, units.size());
    if (fresh)
      units.push_back({u, p.getTensorType().getRank() >= 2});
    Unit &unit = units[it->second];
    unit.members.push_back({p, 0, p.getTensorType().getNumElements()});
  }
  for (size_t u = 0; u < units.size(); ++u) {
    Unit &unit = units[u];
    llvm::StringMap<size_t> position;
    for (size_t m = 0; m < unit.members.size(); ++m)
      position[unit.members[m].param.getSymName()] = m;
    SmallVector<Member> ordered;
    llvm::StringSet<> placed;
    auto place = [&](const Member &m) {
      if (placed.insert(m.param.getSymName()).second)
        ordered.push_back(m);
    };
    for (const Member &m : unit.members) {
      auto group = groupOf.find(m.param.getSymName());
      if (group == groupOf.end()) {
        place(m);
        continue;
      }
      for (StringRef name : group->second)
        if (auto at = position.find(name); at != position.end())
          place(unit.members[at->second]);
    }
    unit.members = std::move(ordered);
    for (size_t m = 0; m < unit.members.size(); ++m) {
      unit.members[m].offset = unit.flat;
      unit.flat += unit.members[m].numel;
      memberOf[unit.members[m].param.getSymName()] = {u, m};
    }
  }
  return success();
}

struct PlanFsdpPass : llamac::impl::LlamaPlanFsdpBase<PlanFsdpPass> {
  using LlamaPlanFsdpBase::LlamaPlanFsdpBase;

  void runOnOperation() override {
    if (ranks < 1 || prefetch < 0 || replicas < 1 || ranks % replicas != 0) {
      getOperation().emitError("llamac-plan-fsdp: ranks must be at least 1, a multiple of "
                               "replicas (at least 1), and prefetch at least 0");
      return signalPassFailure();
    }
    for (ModelOp model : getOperation().getOps<ModelOp>())
      if (failed(plan(model)))
        return signalPassFailure();
  }

  LogicalResult plan(ModelOp model) {
    MLIRContext *ctx = model.getContext();
    func::FuncOp trainGrad, trainUpdate;
    for (func::FuncOp f : model.getOps<func::FuncOp>()) {
      if (f.getSymName() == "train_grad")
        trainGrad = f;
      if (f.getSymName() == "train_update")
        trainUpdate = f;
    }
    if (!trainGrad || !trainUpdate)
      return model.emitError("llamac-plan-fsdp needs @train_grad and @train_update "
                             "(run it after llamac-train-step)");

    llvm::StringMap<ParamOp> byName;
    for (ParamOp p : model.getOps<ParamOp>())
      byName[p.getSymName()] = p;
    std::vector<Unit> units;
    llvm::StringMap<std::pair<size_t, size_t>> memberOf; // weight -> (unit, member)
    if (failed(collectUnits(model, units, memberOf)))
      return failure();
    if (units.empty())
      return success();
    const int64_t group = ranks / replicas;
    for (Unit &u : units) {
      u.padded = (u.flat + group - 1) / group * group;
      u.shard = u.padded / group;
    }

    // The grid and the shards.
    OpBuilder b(ctx);
    Block &body = model.getBody().front();
    b.setInsertionPointToStart(&body);
    if (SymbolTable::lookupSymbolIn(model, kGrid))
      return model.emitError("llamac-plan-fsdp: the model already has a symbol @") << kGrid;
    if (replicas > 1)
      shard::GridOp::create(b, model.getLoc(), kGrid,
                            ArrayRef<int64_t>{int64_t(replicas), group});
    else
      shard::GridOp::create(b, model.getLoc(), kGrid, ArrayRef<int64_t>{int64_t(ranks)});
    Operation *lastParam = nullptr;
    for (ParamOp p : model.getOps<ParamOp>())
      lastParam = p;
    b.setInsertionPointAfter(lastParam);
    for (const Unit &u : units) {
      SmallVector<Attribute> names, shapes, inits;
      SmallVector<int64_t> offsets;
      SmallVector<double> stds;
      for (const Member &m : u.members) {
        names.push_back(b.getStringAttr(m.param.getSymName()));
        offsets.push_back(m.offset);
        shapes.push_back(b.getDenseI64ArrayAttr(m.param.getTensorType().getShape()));
        inits.push_back(b.getStringAttr(stringifyInitKind(m.param.getInit())));
        stds.push_back(m.param.getStd() ? m.param.getStd()->convertToDouble() : 0.0);
      }
      DictionaryAttr layout = b.getDictionaryAttr(
          {b.getNamedAttr("members", b.getArrayAttr(names)),
           b.getNamedAttr("offsets", b.getDenseI64ArrayAttr(offsets)),
           b.getNamedAttr("shapes", b.getArrayAttr(shapes)),
           b.getNamedAttr("inits", b.getArrayAttr(inits)),
           b.getNamedAttr("stds", b.getDenseF64ArrayAttr(stds)),
           b.getNamedAttr("flat", b.getI64IntegerAttr(u.flat)),
           b.getNamedAttr("padded", b.getI64IntegerAttr(u.padded)),
           b.getNamedAttr("ranks", b.getI64IntegerAttr(group)),
           b.getNamedAttr("replicas", b.getI64IntegerAttr(replicas))});
      for (const char *prefix : {"", "grad.", "adamw.m.", "adamw.v."}) {
        auto p = ParamOp::create(b, model.getLoc(),
                                 b.getStringAttr(std::string("fsdp.") + prefix + u.name),
                                 TypeAttr::get(flatType(u.shard, ctx)),
                                 InitKindAttr::get(ctx, InitKind::zeros), FloatAttr(),
                                 *prefix ? b.getUnitAttr() : UnitAttr());
        p->setAttr("llama.fsdp", layout);
      }
    }

    // The gradient function (@loss_grad, which returns one gradient per weight by name:
    // llama.grads) has no sharded meaning; @train_grad is its sharded form.
    for (func::FuncOp f : llvm::make_early_inc_range(model.getOps<func::FuncOp>()))
      if (f->hasAttr("llama.grads"))
        f.erase();
    // Gathers in every function but @train_update, which is rebuilt.
    for (func::FuncOp f : llvm::make_early_inc_range(model.getOps<func::FuncOp>()))
      if (f != trainUpdate && failed(gatherWeights(f, units, memberOf)))
        return failure();
    if (failed(shardGradients(trainGrad, units, memberOf)))
      return failure();
    sumLoss(trainGrad);
    if (failed(rebuildUpdate(trainUpdate, units)))
      return failure();

    // The unsharded declarations are unused now.
    for (const Unit &u : units)
      for (const Member &m : u.members) {
        // The weight itself goes first: its name must not be read from it after that.
        std::string name = m.param.getSymName().str();
        for (StringRef prefix : {"", "grad.", "adamw.m.", "adamw.v."}) {
          ParamOp p = byName.lookup((prefix + name).str());
          if (!p)
            continue;
          if (!SymbolTable::symbolKnownUseEmpty(p, model))
            return p.emitError("llamac-plan-fsdp: @") << p.getSymName() << " is still used";
          p.erase();
        }
      }

    if (report)
      printReport(units);
    return success();
  }

  /// Replaces the function's weight reads with views of all-gathered units.
  LogicalResult gatherWeights(func::FuncOp f, ArrayRef<Unit> units,
                              const llvm::StringMap<std::pair<size_t, size_t>> &memberOf) {
    if (f.isExternal())
      return success();
    Block &block = f.getBody().front();
    DenseMap<Operation *, int64_t> position;
    int64_t i = 0;
    for (Operation &op : block)
      position[&op] = i++;
    // Per unit and phase (0 forward, 1 backward): the first user, and the reads.
    struct Phase {
      Operation *first = nullptr; ///< the first op that uses the unit in this phase
      Operation *issue = nullptr; ///< where its gather goes (prefetch: earlier)
      Value gathered;
      DenseMap<size_t, Value> views;
    };
    std::vector<std::array<Phase, 2>> phases(units.size());
    SmallVector<GetParamOp> reads;
    for (GetParamOp g : block.getOps<GetParamOp>()) {
      auto it = memberOf.find(g.getName());
      if (it == memberOf.end())
        continue;
      reads.push_back(g);
      for (Operation *user : g->getUsers()) {
        Operation *top = block.findAncestorOpInBlock(*user);
        int phase = reshardAfterForward && top->hasAttr("llama.backward") ? 1 : 0;
        Operation *&first = phases[it->second.first][phase].first;
        if (!first || position[top] < position[first])
          first = top;
      }
    }
    // Prefetch: in each phase, the gather of the k-th unit to be used is issued before the
    // first use of the (k - prefetch)-th, so that it can overlap that unit's compute.
    for (int phase = 0; phase < 2; ++phase) {
      SmallVector<size_t> order;
      for (size_t u = 0; u < units.size(); ++u)
        if (phases[u][phase].first)
          order.push_back(u);
      llvm::sort(order, [&](size_t a, size_t b) {
        return position[phases[a][phase].first] < position[phases[b][phase].first];
      });
      for (size_t k = 0; k < order.size(); ++k)
        phases[order[k]][phase].issue =
            phases[order[k >= size_t(prefetch) ? k - size_t(prefetch) : 0]][phase].first;
    }
    // Mixed precision (llamac-mixed-precision): a unit whose weights are only ever read as
    // bf16 here is gathered in bf16, half the bytes; its f32 readers (norm gains, the
    // embedding table) read the bf16 value widened, as the unsharded program does.
    std::vector<bool> gatherBf16(units.size(), true);
    for (GetParamOp g : reads)
      if (!readAsBf16Only(g.getResult()))
        gatherBf16[memberOf.lookup(g.getName()).first] = false;
    OpBuilder b(f.getContext());
    MLIRContext *ctx = f.getContext();
    for (GetParamOp g : reads) {
      auto [u, m] = memberOf.lookup(g.getName());
      const Unit &unit = units[u];
      const Member &member = unit.members[m];
      const bool bf16 = gatherBf16[u];
      for (OpOperand &use : llvm::make_early_inc_range(g->getUses())) {
        Operation *top = block.findAncestorOpInBlock(*use.getOwner());
        int phase = reshardAfterForward && top->hasAttr("llama.backward") ? 1 : 0;
        Phase &p = phases[u][phase];
        Location loc = g.getLoc();
        if (!p.gathered) {
          b.setInsertionPoint(p.issue);
          Value shard = GetParamOp::create(b, loc, flatType(unit.shard, ctx),
                                           FlatSymbolRefAttr::get(ctx, "fsdp." + unit.name));
          if (bf16)
            shard = CastOp::create(b, loc, flatType(unit.shard, ctx, true), shard);
          p.gathered = shard::AllGatherOp::create(b, loc, flatType(unit.padded, ctx, bf16),
                                                  kGrid, shardAxes(), shard, APInt(64, 0));
          if (phase == 1) {
            p.gathered.getDefiningOp()->setAttr("llama.backward", b.getUnitAttr());
            if (bf16)
              shard.getDefiningOp()->setAttr("llama.backward", b.getUnitAttr());
          }
        }
        Value &view = p.views[m];
        if (!view) {
          b.setInsertionPointAfter(p.gathered.getDefiningOp());
          Value flat = SliceOp::create(b, loc, p.gathered, 0, uint64_t(member.offset),
                                       uint64_t(member.numel));
          RankedTensorType t = member.param.getTensorType();
          view = t.getRank() == 1
                     ? flat
                     : SplitDimOp::create(b, loc, flat, 0, t.getShape()).getResult();
          if (bf16) {
            // The f32 value the readers expect; foldRoundTrips removes it where they
            // narrow it straight back.
            b.setInsertionPointAfter(view.getDefiningOp());
            view = CastOp::create(b, loc, t, view);
          }
        }
        use.set(view);
      }
      g.erase();
    }
    foldRoundTrips(block);
    return success();
  }

  static bool isNarrowingCast(Operation *op) {
    auto c = dyn_cast<CastOp>(op);
    return c && c.getType().getElementType().isBF16() &&
           c.getInput().getType().getElementType().isF32();
  }

  /// Whether every reader of weight `v` narrows it to bf16: a cast, or a concatenation
  /// (llamac-fuse-qkv-rope's [Wq; Wk; Wv]) that only casts read.
  static bool readAsBf16Only(Value v) {
    return llvm::all_of(v.getUsers(), [](Operation *user) {
      if (isNarrowingCast(user))
        return true;
      return isa<ConcatOp>(user) && !user->getResult(0).use_empty() &&
             llvm::all_of(user->getResult(0).getUsers(), isNarrowingCast);
    });
  }

  /// The bf16 value `v` is the exact widening of, or null.
  static Value widenedFrom(Value v) {
    auto wide = v.getDefiningOp<CastOp>();
    if (!wide || !wide.getInput().getType().getElementType().isBF16() ||
        !wide.getType().getElementType().isF32())
      return nullptr;
    return wide.getInput();
  }

  /// Widening is exact, so cast(cast(x : bf16 to f32) to bf16) is x, and the narrowed
  /// concatenation of widened values is the concatenation of the values. What a bf16 gather
  /// leaves where the readers narrowed the weights themselves.
  static void foldRoundTrips(Block &block) {
    for (Operation &op : llvm::make_early_inc_range(block)) {
      if (!isNarrowingCast(&op))
        continue;
      Value in = cast<CastOp>(op).getInput(), narrow;
      if (Value x = widenedFrom(in)) {
        narrow = x;
      } else if (auto concat = in.getDefiningOp<ConcatOp>(); concat && concat->hasOneUse()) {
        SmallVector<Value> parts;
        for (Value part : concat.getInputs())
          if (Value x = widenedFrom(part))
            parts.push_back(x);
        if (parts.size() != concat.getInputs().size())
          continue;
        OpBuilder b(concat);
        narrow = ConcatOp::create(b, concat.getLoc(), parts, concat.getDimAttr());
      } else {
        continue;
      }
      Operation *def = in.getDefiningOp();
      op.getResult(0).replaceAllUsesWith(narrow);
      op.erase();
      // The widenings (and concatenation) left without readers.
      SmallVector<Operation *> dead = {def};
      while (!dead.empty()) {
        Operation *d = dead.pop_back_val();
        if (!d || !d->use_empty() || !isa<CastOp, ConcatOp>(d))
          continue;
        for (Value operand : d->getOperands())
          dead.push_back(operand.getDefiningOp());
        d->erase();
      }
    }
  }

  /// @train_grad: grad.<w> += g_w becomes fsdp.grad.<unit> += reduce_scatter(flat g).
  LogicalResult shardGradients(func::FuncOp f, ArrayRef<Unit> units,
                               const llvm::StringMap<std::pair<size_t, size_t>> &memberOf) {
    MLIRContext *ctx = f.getContext();
    Block &block = f.getBody().front();
    std::vector<SmallVector<Value>> grads(units.size());
    for (size_t u = 0; u < units.size(); ++u)
      grads[u].resize(units[u].members.size());
    SmallVector<Operation *> dead;
    Operation *last = nullptr;
    for (SetParamOp set : llvm::make_early_inc_range(block.getOps<SetParamOp>())) {
      StringRef name = set.getName();
      if (!name.consume_front("grad."))
        continue;
      auto it = memberOf.find(name);
      if (it == memberOf.end())
        continue;
      auto add = set.getValue().getDefiningOp<AddOp>();
      auto old = add ? add.getLhs().getDefiningOp<GetParamOp>() : GetParamOp();
      if (!old || old.getName() != set.getName())
        return set.emitError("llamac-plan-fsdp expects grad.<w> = grad.<w> + g here");
      grads[it->second.first][it->second.second] = add.getRhs();
      dead.append({set, add, old});
      last = set;
    }
    if (!last)
      return f.emitError("llamac-plan-fsdp found no gradient accumulation in @train_grad");
    OpBuilder b(ctx);
    b.setInsertionPointAfter(last);
    Location loc = f.getLoc();
    for (size_t u = 0; u < units.size(); ++u) {
      const Unit &unit = units[u];
      SmallVector<Value> parts;
      for (size_t m = 0; m < unit.members.size(); ++m) {
        Value g = grads[u][m];
        if (!g) { // a weight the loss does not depend on
          g = arith::ConstantOp::create(
              b, loc, cast<TypedAttr>(b.getZeroAttr(unit.members[m].param.getTensorType())));
        }
        // Row-major flattening: merge the leading dimensions one by one.
        while (cast<RankedTensorType>(g.getType()).getRank() > 1)
          g = MergeDimsOp::create(b, loc, g, 0);
        parts.push_back(g);
      }
      Value flat = parts.size() == 1
                       ? parts.front()
                       : ConcatOp::create(b, loc, flatType(unit.flat, ctx), parts, 0)
                             .getResult();
      if (unit.padded > unit.flat)
        flat = PadOp::create(b, loc, flat, 0, 0, uint64_t(unit.padded - unit.flat));
      Value mine = shard::ReduceScatterOp::create(b, loc, flatType(unit.shard, ctx), kGrid,
                                                  shardAxes(), flat,
                                                  shard::ReductionKind::Sum, APInt(64, 0));
      // Hybrid sharding: the replicas of this shard sum theirs.
      if (replicas > 1)
        mine = shard::AllReduceOp::create(b, loc, flatType(unit.shard, ctx), kGrid,
                                          ArrayRef<int16_t>{0}, mine,
                                          shard::ReductionKind::Sum);
      auto acc = FlatSymbolRefAttr::get(ctx, "fsdp.grad." + unit.name);
      Value old = GetParamOp::create(b, loc, flatType(unit.shard, ctx), acc);
      Value sum = AddOp::create(b, loc, flatType(unit.shard, ctx), old, mine);
      SetParamOp::create(b, loc, acc, sum);
    }
    for (Operation *op : dead)
      if (op->use_empty())
        op->erase();
    return success();
  }

  /// @train_update on the shards: global norm, clipping, schedule, AdamW, zeroed gradients.
  LogicalResult rebuildUpdate(func::FuncOp f, ArrayRef<Unit> units) {
    MLIRContext *ctx = f.getContext();
    Block &block = f.getBody().front();
    GradClipOp clip;
    LRScheduleOp schedule;
    AdamWOp decayedUpdate, anyUpdate;
    for (Operation &op : block) {
      if (auto c = dyn_cast<GradClipOp>(op))
        clip = c;
      if (auto s = dyn_cast<LRScheduleOp>(op))
        schedule = s;
      if (auto a = dyn_cast<AdamWOp>(op)) {
        anyUpdate = a;
        if (!decayedUpdate && cast<RankedTensorType>(a.getParam().getType()).getRank() >= 2)
          decayedUpdate = a;
      }
    }
    if (!clip || !schedule || !anyUpdate)
      return f.emitError("llamac-plan-fsdp expects @train_update as llamac-train-step "
                         "builds it (grad_clip, lr_schedule, adamw)");
    double decay = decayedUpdate ? decayedUpdate.getWeightDecay().convertToDouble() : 0.0;

    // A fresh body: the old one goes once the new one is built.
    Block *fresh = new Block();
    for (BlockArgument a : block.getArguments())
      fresh->addArgument(a.getType(), a.getLoc());
    f.getBody().push_back(fresh);
    OpBuilder b = OpBuilder::atBlockBegin(fresh);
    Location loc = f.getLoc();
    Value step = fresh->getArgument(0), count = fresh->getArgument(3);
    auto scalar = RankedTensorType::get({}, Float32Type::get(ctx));
    auto constant = [&](double v) {
      return arith::ConstantOp::create(b, loc, DenseElementsAttr::get(scalar, float(v)))
          .getResult();
    };
    SmallVector<Value> grads;
    for (const Unit &u : units)
      grads.push_back(GetParamOp::create(b, loc, flatType(u.shard, ctx),
                                         FlatSymbolRefAttr::get(ctx, "fsdp.grad." + u.name)));
    // grad_clip's norm of the local shards is sqrt(ss) / count: recover ss, sum it over the
    // ranks, and clip with the global norm exactly as grad_clip defines it.
    auto local = GradClipOp::create(b, loc, scalar, scalar, grads, count, clip.getMaxNormAttr());
    Value ss = MulOp::create(b, loc, scalar, local.getNorm(), count);
    ss = MulOp::create(b, loc, scalar, ss, ss);
    // (Over the shard group only: every replica holds the same gradients.)
    ss = shard::AllReduceOp::create(b, loc, scalar, kGrid, shardAxes(), ss,
                                    shard::ReductionKind::Sum);
    Value norm = DivOp::create(b, loc, scalar, SqrtOp::create(b, loc, scalar, ss), count);
    Value ratio = DivOp::create(
        b, loc, scalar, constant(clip.getMaxNorm().convertToDouble()),
        AddOp::create(b, loc, scalar, norm, constant(1e-6)));
    // min(1, ratio) = -max(-1, -ratio)
    Value clipped = NegOp::create(
        b, loc, scalar,
        MaxOp::create(b, loc, scalar, constant(-1.0), NegOp::create(b, loc, scalar, ratio)));
    Value coefficient = DivOp::create(b, loc, scalar, clipped, count);
    IRMapping map;
    for (auto [old, now] : llvm::zip(block.getArguments(), fresh->getArguments()))
      map.map(old, now);
    Value lr = b.clone(*schedule, map)->getResult(0);
    for (auto [i, u] : llvm::enumerate(units)) {
      auto t = flatType(u.shard, ctx);
      auto sym = [&](StringRef prefix) {
        return FlatSymbolRefAttr::get(ctx, ("fsdp." + prefix + u.name).str());
      };
      Value param = GetParamOp::create(b, loc, t, sym(""));
      Value m = GetParamOp::create(b, loc, t, sym("adamw.m."));
      Value v = GetParamOp::create(b, loc, t, sym("adamw.v."));
      auto update = AdamWOp::create(b, loc, t, t, t, param, grads[i], m, v, lr, step,
                                    coefficient, anyUpdate.getBeta1Attr(),
                                    anyUpdate.getBeta2Attr(), anyUpdate.getEpsAttr(),
                                    b.getF64FloatAttr(u.decayed ? decay : 0.0));
      SetParamOp::create(b, loc, sym(""), update.getNewParam());
      SetParamOp::create(b, loc, sym("adamw.m."), update.getNewM());
      SetParamOp::create(b, loc, sym("adamw.v."), update.getNewV());
      auto zeros = arith::ConstantOp::create(b, loc, cast<TypedAttr>(b.getZeroAttr(t)));
      SetParamOp::create(b, loc, sym("grad."), zeros);
    }
    func::ReturnOp::create(b, loc, ValueRange{lr, norm});
    block.dropAllDefinedValueUses();
    block.dropAllReferences();
    block.erase();
    return success();
  }

  /// @train_grad returns the loss summed over every rank's micro-batch (one all_reduce per
  /// grid axis), so that each rank reports the global figure.
  void sumLoss(func::FuncOp f) {
    auto ret = cast<func::ReturnOp>(f.getBody().front().getTerminator());
    OpBuilder b(ret);
    for (OpOperand &result : ret->getOpOperands()) {
      Value v = result.get();
      for (int16_t axis = 0; axis < (replicas > 1 ? 2 : 1); ++axis)
        v = shard::AllReduceOp::create(b, ret.getLoc(), v.getType(), kGrid,
                                       ArrayRef<int16_t>{axis}, v, shard::ReductionKind::Sum);
      result.set(v);
    }
  }

  /// The grid axis the units are sharded along: the only one, or the second of the
  /// (replicas x group) grid.
  SmallVector<int16_t> shardAxes() const { return {int16_t(replicas > 1 ? 1 : 0)}; }

  void printReport(ArrayRef<Unit> units) {
    int64_t total = 0, perRank = 0, largest = 0;
    for (const Unit &u : units) {
      total += u.flat;
      perRank += u.shard;
      largest = std::max(largest, u.padded);
    }
    // Weights, gradients and two AdamW moments, f32 each.
    auto mib = [](int64_t elements) { return double(elements) * 16 / double(1 << 20); };
    llvm::errs() << "llamac-plan-fsdp: " << ranks << " ranks";
    if (replicas > 1)
      llvm::errs() << " (" << replicas << " replicas of " << ranks / replicas << ")";
    llvm::errs() << ", " << units.size()
                 << " units; parameters, gradients and AdamW state per rank "
                 << llvm::format("%.2f", mib(perRank)) << " MiB of "
                 << llvm::format("%.2f", mib(total)) << " MiB unsharded ("
                 << llvm::format("%.3f", double(perRank) / double(total)) << " = 1/"
                 << llvm::format("%.2f", double(total) / double(perRank))
                 << "); largest gathered unit "
                 << llvm::format("%.2f", double(largest) * 4 / double(1 << 20)) << " MiB\n";
    for (const Unit &u : units)
      llvm::errs() << "  unit " << u.name << ": " << u.members.size() << " tensors, "
                   << u.flat << " elements, padded " << u.padded << ", " << u.shard
                   << " per rank\n";
  }
};

} // namespace

FailureOr<std::vector<FsdpUnitSize>> llamac::fsdpUnitSizes(ModelOp model) {
  std::vector<Unit> units;
  llvm::StringMap<std::pair<size_t, size_t>> memberOf;
  if (failed(collectUnits(model, units, memberOf)))
    return failure();
  std::vector<FsdpUnitSize> sizes;
  for (const Unit &u : units)
    sizes.push_back({u.name, u.flat});
  return sizes;
}
