//===- Interpreter.cpp - the reference interpreter ---------------------------------===//
#include "runtime/interpreter/Interpreter.h"

#include "runtime/Safetensors.h"
#include "runtime/interpreter/Kernels.h"
#include "runtime/interpreter/SimulatedRanks.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Math/IR/Math.h"
#include "mlir/Dialect/Shard/IR/ShardOps.h"

#include "mlir/IR/BuiltinTypes.h"
#include "llvm/ADT/TypeSwitch.h"
#include "llvm/Support/raw_ostream.h"

#include <cmath>

using namespace mlir;
using namespace llamac;
using namespace llamac::llama;

//===----------------------------------------------------------------------------------===//
// Helpers
//===----------------------------------------------------------------------------------===//

std::optional<DType> llamac::toDType(Type t) {
  if (t.isF64())
    return DType::F64;
  if (t.isF32())
    return DType::F32;
  if (t.isBF16())
    return DType::BF16;
  if (t.isF16())
    return DType::F16;
  if (t.isInteger(64) || t.isIndex())
    return DType::I64;
  if (t.isInteger(32))
    return DType::I32;
  return std::nullopt;
}

std::vector<int64_t> llamac::concreteShape(RankedTensorType type, int64_t batch, int64_t seq) {
  std::vector<int64_t> shape(type.getShape());
  for (size_t i = 0; i < shape.size(); ++i)
    if (ShapedType::isDynamic(shape[i]))
      shape[i] = i == 0 ? batch : seq;
  return shape;
}

namespace {

std::string locString(Operation *op) {
  std::string s;
  llvm::raw_string_ostream os(s);
  os << "'" << op->getName() << "' at " << op->getLoc();
  return s;
}

std::string typeString(Type t) {
  std::string s;
  llvm::raw_string_ostream os(s);
  os << t;
  return s;
}

/// "" if `t` has `shape`, else a message naming `what`. The backward fused ops take shapes
/// that no verifier relates to each other (the lse of flash_attention_grad and
/// fused_cross_entropy_grad, swiglu_grad's grad, ...), and their kernels index by them.
std::string expectShape(const Tensor &t, const std::vector<int64_t> &shape,
                        const std::string &what) {
  if (t.shape == shape)
    return "";
  return what + " is " + shapeString(t.shape) + " but the op needs " + shapeString(shape);
}

/// "" if q [b, t, h, d], k and v [b, s, kv, d] fit attention's layout with kv dividing h,
/// else a message: what AttentionOp's shape rule checks and the shape-rule-less
/// flash_attention_grad and attention_lse do not, and their kernels rely on.
std::string attentionShapes(const Tensor &q, const Tensor &k, const Tensor &v,
                            const std::string &op) {
  if (q.rank() != 4 || k.rank() != 4 || k.shape != v.shape || k.dim(0) != q.dim(0) ||
      k.dim(3) != q.dim(3) || k.dim(2) == 0 || q.dim(2) % k.dim(2) != 0)
    return op + ": query " + shapeString(q.shape) + ", key " + shapeString(k.shape) +
           " and value " + shapeString(v.shape) + " do not fit [b, t, h, d], [b, s, kv, d] " +
           "with kv dividing h";
  return "";
}

/// llama.fused_elementwise: the body's scalar ops evaluated in block order for each element
/// index, on doubles. In F32 precision every intermediate is rounded to its scalar type,
/// as the decomposition rounds each of its whole-tensor intermediates.
bool fusedElementwise(FusedElementwiseOp op, const std::vector<const Tensor *> &inputs,
                      Precision precision, Tensor &out, std::string *failure) {
  Block &body = op.getBody().front();
  RankedTensorType type = op.getType();
  if (inputs.empty() && !type.hasStaticShape()) {
    *failure = "a fused_elementwise without inputs needs a static result shape";
    return false;
  }
  out = Tensor(*toDType(type.getElementType()), inputs.empty()
                                                     ? std::vector<int64_t>(type.getShape())
                                                     : inputs.front()->shape);
  auto rounded = [&](Value v, double x) {
    std::optional<DType> t = toDType(v.getType());
    return precision == Precision::F32 && t ? roundTo(*t, x) : x;
  };
  llvm::DenseMap<Value, double> values;
  Value yielded = cast<YieldOp>(body.getTerminator()).getValue();
  for (int64_t i = 0; i < out.numElements(); ++i) {
    for (auto [arg, input] : llvm::zip(body.getArguments(), inputs))
      values[arg] = (*input)[i];
    for (Operation &scalar : body.without_terminator()) {
      auto x = [&](unsigned k) { return values.lookup(scalar.getOperand(k)); };
      std::optional<double> r =
          llvm::TypeSwitch<Operation *, std::optional<double>>(&scalar)
              .Case([&](arith::AddFOp) { return x(0) + x(1); })
              .Case([&](arith::SubFOp) { return x(0) - x(1); })
              .Case([&](arith::MulFOp) { return x(0) * x(1); })
              .Case([&](arith::DivFOp) { return x(0) / x(1); })
              .Case([&](arith::NegFOp) { return -x(0); })
              .Case([&](arith::MaximumFOp) {
                // NaN-propagating, as arith.maximumf and llama.max.
                return std::isnan(x(0)) || std::isnan(x(1)) ? NAN : std::max(x(0), x(1));
              })
              .Case([&](math::ExpOp) { return std::exp(x(0)); })
              .Case([&](math::LogOp) { return std::log(x(0)); })
              .Case([&](math::SqrtOp) { return std::sqrt(x(0)); })
              .Case([&](math::RsqrtOp) { return 1.0 / std::sqrt(x(0)); })
              .Case([&](arith::ConstantOp c) -> std::optional<double> {
                if (auto f = dyn_cast<FloatAttr>(c.getValue()))
                  return f.getValueAsDouble();
                return std::nullopt;
              })
              .Default([](Operation *) { return std::nullopt; });
      if (!r) {
        *failure = "'" + scalar.getName().getStringRef().str() +
                   "' is not supported in a fused_elementwise body";
        return false;
      }
      values[scalar.getResult(0)] = rounded(scalar.getResult(0), *r);
    }
    out[i] = values.lookup(yielded);
  }
  return true;
}

} // namespace

//===----------------------------------------------------------------------------------===//
// Parameters
//===----------------------------------------------------------------------------------===//

Interpreter::Interpreter(ModelOp model, Precision precision, uint64_t seed)
    : model_(model), precision_(precision), seed_(seed) {
  for (Operation &op : model.getBody().front()) {
    if (auto p = dyn_cast<ParamOp>(op)) {
      params_.push_back({p.getSymName().str(), p});
    } else if (auto layer = dyn_cast<LayerOp>(op)) {
      for (int64_t i = 0; i < layer.getRepeat(); ++i)
        for (ParamOp p : layer.getBody().front().getOps<ParamOp>())
          params_.push_back(
              {(layer.getSymName() + "." + Twine(i) + "." + p.getSymName()).str(), p});
    }
  }
  for (size_t i = 0; i < params_.size(); ++i)
    paramIndex_[params_[i].name] = i;
}

Tensor Interpreter::initialise(ParamDecl decl) const {
  RankedTensorType type = decl.op.getTensorType();
  Tensor t(*toDType(type.getElementType()), std::vector<int64_t>(type.getShape()));
  switch (decl.op.getInit()) {
  case InitKind::zeros:
    break;
  case InitKind::ones:
    std::fill(t.data.begin(), t.data.end(), 1.0);
    break;
  case InitKind::normal: {
    double std = decl.op.getStd()->convertToDouble();
    uint64_t key = streamKey(seed_, decl.name);
    for (int64_t i = 0; i < t.numElements(); ++i)
      t[i] = std * gaussian(key, uint64_t(i));
    break;
  }
  }
  if (precision_ == Precision::F32)
    t.round();
  return t;
}

const Tensor *Interpreter::parameter(const std::string &name) {
  auto it = values_.find(name);
  if (it != values_.end())
    return &it->second;
  auto idx = paramIndex_.find(name);
  if (idx == paramIndex_.end())
    return nullptr;
  return &(values_[name] = initialise(params_[idx->second]));
}

bool Interpreter::setParameter(const std::string &name, Tensor value, std::string *error) {
  auto idx = paramIndex_.find(name);
  if (idx == paramIndex_.end()) {
    *error = "model @" + model_.getSymName().str() + " declares no parameter '" + name + "'";
    return false;
  }
  RankedTensorType type = params_[idx->second].op.getTensorType();
  DType want = *toDType(type.getElementType());
  std::vector<int64_t> shape(type.getShape());
  if (value.shape != shape || value.dtype != want) {
    Tensor expected(want, shape);
    *error = "parameter '" + name + "' is " + value.describe() + " but the model declares " +
             expected.describe();
    return false;
  }
  if (precision_ == Precision::F32)
    value.round();
  values_[name] = std::move(value);
  return true;
}

bool Interpreter::loadParameters(const TensorFile &file, std::string *error) {
  for (const ParamDecl &p : params_) {
    const Tensor *t = file.find(p.name);
    if (!t) {
      *error = "missing parameter '" + p.name + "'";
      return false;
    }
    if (!setParameter(p.name, *t, error))
      return false;
  }
  return true;
}

//===----------------------------------------------------------------------------------===//
// Execution
//===----------------------------------------------------------------------------------===//

bool Interpreter::run(StringRef name, const std::vector<Tensor> &inputs,
                      std::vector<Tensor> &outputs, std::string *error) {
  func::FuncOp fn = model_.lookupFunction(name);
  if (!fn) {
    std::string names;
    for (func::FuncOp f : model_.getOps<func::FuncOp>())
      names += (names.empty() ? "@" : ", @") + f.getSymName().str();
    *error = "model @" + model_.getSymName().str() + " has no function @" + name.str() +
             " (it has " + (names.empty() ? std::string("none") : names) + ")";
    return false;
  }
  return runFunction(fn, "", inputs, outputs, error, 0);
}

bool Interpreter::runFunction(func::FuncOp fn, const std::string &paramPrefix,
                              const std::vector<Tensor> &inputs, std::vector<Tensor> &outputs,
                              std::string *error, int depth) {
  if (depth > 64) {
    *error = "call depth exceeds 64 in @" + fn.getSymName().str() + " (recursion?)";
    return false;
  }
  if (fn.isExternal()) {
    *error = "function @" + fn.getSymName().str() + " has no body";
    return false;
  }
  Block &block = fn.getBody().front();
  if (inputs.size() != block.getNumArguments()) {
    *error = "@" + fn.getSymName().str() + " takes " +
             std::to_string(block.getNumArguments()) + " inputs, got " +
             std::to_string(inputs.size());
    return false;
  }
  llvm::DenseMap<Value, Tensor> env;
  for (auto [i, arg] : llvm::enumerate(block.getArguments())) {
    Tensor value = inputs[i];
    std::string which = "input " + std::to_string(i) + " of @" + fn.getSymName().str();
    if (arg.getType().isIndex()) {
      if (value.numElements() != 1 || isFloat(value.dtype)) {
        *error = which + " must be an integer scalar (index), got " + value.describe();
        return false;
      }
      env[arg] = value;
      continue;
    }
    auto type = dyn_cast<RankedTensorType>(arg.getType());
    std::optional<DType> want = type ? toDType(type.getElementType()) : std::nullopt;
    if (!want) {
      *error = which + " has a type the interpreter does not support: " +
               typeString(arg.getType());
      return false;
    }
    bool shapeOk = value.rank() == type.getRank();
    for (int64_t d = 0; shapeOk && d < type.getRank(); ++d)
      shapeOk = type.isDynamicDim(d) || type.getDimSize(d) == value.shape[d];
    if (!shapeOk || isFloat(*want) != isFloat(value.dtype)) {
      *error = which + " must be " + typeString(type) + ", got " + value.describe();
      return false;
    }
    value.dtype = *want;
    if (precision_ == Precision::F32 || !isFloat(*want))
      value.round();
    env[arg] = std::move(value);
  }
  for (Operation &op : block) {
    if (auto ret = dyn_cast<func::ReturnOp>(op)) {
      outputs.clear();
      for (Value v : ret.getOperands())
        outputs.push_back(env.lookup(v));
      return true;
    }
    if (!execute(&op, paramPrefix, env, error, depth))
      return false;
  }
  *error = "@" + fn.getSymName().str() + " does not end with func.return";
  return false;
}

bool Interpreter::execute(Operation *op, const std::string &paramPrefix,
                          llvm::DenseMap<Value, Tensor> &env, std::string *error, int depth) {
  auto in = [&](unsigned i) -> const Tensor & { return env[op->getOperand(i)]; };
  std::vector<Tensor> results;
  std::string failure;

  bool ok =
      llvm::TypeSwitch<Operation *, bool>(op)
          .Case([&](GetParamOp p) {
            std::string name = paramPrefix + p.getName().str();
            const Tensor *t = parameter(name);
            if (!t)
              failure = "unknown parameter '" + name + "'";
            else
              results.push_back(*t);
            return t != nullptr;
          })
          .Case([&](StackOp s) {
            auto layer = dyn_cast_or_null<LayerOp>(
                SymbolTable::lookupSymbolIn(model_, s.getLayerAttr()));
            if (!layer) {
              failure = "unknown layer";
              return false;
            }
            std::vector<Tensor> args;
            for (Value v : s.getInputs())
              args.push_back(env[v]);
            for (int64_t i = 0; i < layer.getRepeat(); ++i) {
              std::vector<Tensor> out;
              std::string prefix = (layer.getSymName() + "." + Twine(i) + ".").str();
              if (!runFunction(layer.getBodyFunction(), prefix, args, out, &failure,
                               depth + 1))
                return false;
              args[0] = std::move(out[0]);
            }
            results.push_back(std::move(args[0]));
            return true;
          })
          .Case([&](func::CallOp call) {
            func::FuncOp callee = model_.lookupFunction(call.getCallee());
            if (!callee) {
              failure = "unknown callee @" + call.getCallee().str();
              return false;
            }
            std::vector<Tensor> args;
            for (Value v : call.getOperands())
              args.push_back(env[v]);
            return runFunction(callee, paramPrefix, args, results, &failure, depth + 1);
          })
          .Case([&](EmbeddingOp e) {
            Tensor out;
            if (!ref::embedding(in(0), in(1), out, &failure))
              return false;
            results.push_back(std::move(out));
            return true;
          })
          .Case([&](LinearOp) {
            results.push_back(ref::linear(in(0), in(1)));
            return true;
          })
          .Case([&](MatmulOp m) {
            results.push_back(ref::matmul(in(0), in(1), m.getTransposeRhs()));
            return true;
          })
          .Case([&](RMSNormOp n) {
            results.push_back(ref::rmsNorm(in(0), in(1), n.getEps().convertToDouble()));
            return true;
          })
          .Case([&](RoPEOp r) {
            int64_t offset = r.getOffset() ? int64_t(env[r.getOffset()][0]) : 0;
            results.push_back(
                ref::rope(in(0), r.getTheta().convertToDouble(), offset, r.getInverse()));
            return true;
          })
          .Case([&](AttentionOp a) {
            results.push_back(ref::attention(in(0), in(1), in(2), a.getCausal(),
                                             a.getWindow().value_or(0),
                                             a.getEffectiveScale()));
            return true;
          })
          .Case([&](SoftmaxOp) {
            results.push_back(ref::softmax(in(0)));
            return true;
          })
          .Case([&](CrossEntropyOp c) {
            Tensor out;
            if (!ref::crossEntropy(in(0), in(1), c.getIgnoreIndex(), out, &failure))
              return false;
            results.push_back(std::move(out));
            return true;
          })
          .Case([&](SiLUOp) { results.push_back(ref::unary(in(0), ref::silu)); return true; })
          .Case([&](SigmoidOp) {
            results.push_back(ref::unary(in(0), ref::sigmoid));
            return true;
          })
          .Case([&](NegOp) {
            results.push_back(ref::unary(in(0), [](double x) { return -x; }));
            return true;
          })
          .Case([&](ExpOp) {
            results.push_back(ref::unary(in(0), [](double x) { return std::exp(x); }));
            return true;
          })
          .Case([&](LogOp) {
            results.push_back(ref::unary(in(0), [](double x) { return std::log(x); }));
            return true;
          })
          .Case([&](SqrtOp) {
            results.push_back(ref::unary(in(0), [](double x) { return std::sqrt(x); }));
            return true;
          })
          .Case([&](RsqrtOp) {
            results.push_back(ref::unary(in(0), [](double x) { return 1.0 / std::sqrt(x); }));
            return true;
          })
          .Case([&](ScaleOp s) {
            double f = s.getFactor().convertToDouble();
            results.push_back(ref::unary(in(0), [f](double x) { return x * f; }));
            return true;
          })
          .Case([&](AddOp) {
            results.push_back(ref::binary(in(0), in(1), std::plus<double>()));
            return true;
          })
          .Case([&](SubOp) {
            results.push_back(ref::binary(in(0), in(1), std::minus<double>()));
            return true;
          })
          .Case([&](MulOp) {
            results.push_back(ref::binary(in(0), in(1), std::multiplies<double>()));
            return true;
          })
          .Case([&](DivOp) {
            results.push_back(ref::binary(in(0), in(1), std::divides<double>()));
            return true;
          })
          .Case([&](MaxOp) {
            results.push_back(ref::binary(in(0), in(1), [](double a, double b) {
              return std::isnan(a) || std::isnan(b) ? NAN : std::max(a, b);
            }));
            return true;
          })
          .Case([&](CastOp) {
            results.push_back(in(0)); // the result dtype and rounding are applied below
            return true;
          })
          .Case([&](SplitDimOp s) {
            std::vector<int64_t> shape = in(0).shape;
            int64_t d = s.getDim();
            shape.erase(shape.begin() + d);
            shape.insert(shape.begin() + d, s.getSizes().begin(), s.getSizes().end());
            if (Tensor(DType::F32, shape).numElements() != in(0).numElements()) {
              failure = "split_dim sizes do not cover dim " + std::to_string(d) + " (" +
                        std::to_string(in(0).shape[d]) + ")";
              return false;
            }
            results.push_back(ref::reshape(in(0), shape));
            return true;
          })
          .Case([&](MergeDimsOp m) {
            std::vector<int64_t> shape = in(0).shape;
            int64_t d = m.getDim();
            shape[d] *= shape[d + 1];
            shape.erase(shape.begin() + d + 1);
            results.push_back(ref::reshape(in(0), shape));
            return true;
          })
          .Case([&](TransposeOp t) {
            results.push_back(ref::transpose(
                in(0), std::vector<int64_t>(t.getPermutation().begin(),
                                            t.getPermutation().end())));
            return true;
          })
          .Case([&](ConcatOp c) {
            std::vector<const Tensor *> ins;
            for (Value v : c.getInputs())
              ins.push_back(&env[v]);
            results.push_back(ref::concat(ins, c.getDim()));
            return true;
          })
          .Case([&](SliceOp s) {
            if (s.getOffset() + s.getSize() > in(0).shape[s.getDim()]) {
              failure = "slice exceeds dim " + std::to_string(s.getDim()) + " (" +
                        std::to_string(in(0).shape[s.getDim()]) + ")";
              return false;
            }
            results.push_back(ref::slice(in(0), s.getDim(), s.getOffset(), s.getSize()));
            return true;
          })
          .Case([&](PadOp p) {
            results.push_back(ref::pad(in(0), int64_t(p.getDim()), int64_t(p.getBefore()),
                                          int64_t(p.getAfter())));
            return true;
          })
          // Backward ops.
          .Case([&](EmbeddingGradOp e) {
            Tensor out;
            if (!ref::embeddingGrad(in(0), in(1), int64_t(e.getVocab()), out, &failure))
              return false;
            results.push_back(std::move(out));
            return true;
          })
          .Case([&](LinearWeightGradOp) {
            results.push_back(ref::linearWeightGrad(in(0), in(1)));
            return true;
          })
          .Case([&](RMSNormGradOp n) {
            ref::RMSNormGrads g =
                ref::rmsNormGrad(in(0), in(1), in(2), n.getEps().convertToDouble());
            results.push_back(std::move(g.input));
            results.push_back(std::move(g.weight));
            return true;
          })
          .Case([&](AttentionGradOp a) {
            ref::AttentionGrads g =
                ref::attentionGrad(in(0), in(1), in(2), in(3), a.getCausal(),
                                   a.getWindow().value_or(0), a.getEffectiveScale());
            results.push_back(std::move(g.query));
            results.push_back(std::move(g.key));
            results.push_back(std::move(g.value));
            return true;
          })
          .Case([&](SoftmaxGradOp) {
            results.push_back(ref::softmaxGrad(in(0), in(1)));
            return true;
          })
          .Case([&](SiLUGradOp) {
            results.push_back(ref::siluGrad(in(0), in(1)));
            return true;
          })
          .Case([&](CrossEntropyGradOp c) {
            Tensor out;
            if (!ref::crossEntropyGrad(in(0), in(1), in(2)[0], c.getIgnoreIndex(), out,
                                       &failure))
              return false;
            results.push_back(std::move(out));
            return true;
          })
          // Training ops. Scalars are rank-0 tensors.
          .Case([&](SetParamOp s) {
            // The verifier resolves the name in the model, not in an enclosing layer (as
            // get_param does), so no layer prefix applies. setParameter checks the
            // declared type and, in F32 precision, rounds to it.
            return setParameter(s.getName().str(), in(0), &failure);
          })
          .Case([&](GradClipOp g) {
            std::vector<const Tensor *> grads;
            for (Value v : g.getGrads())
              grads.push_back(&env[v]);
            ref::GradClipResult r =
                ref::gradClip(grads, env[g.getCount()][0], g.getMaxNorm().convertToDouble());
            results.emplace_back(DType::F32, std::vector<int64_t>{}, r.coefficient);
            results.emplace_back(DType::F32, std::vector<int64_t>{}, r.norm);
            return true;
          })
          .Case([&](LRScheduleOp l) {
            double lr = ref::lrSchedule(int64_t(in(0)[0]), in(1)[0], int64_t(in(2)[0]),
                                        int64_t(l.getWarmup()),
                                        l.getFloor().convertToDouble());
            results.emplace_back(DType::F32, std::vector<int64_t>{}, lr);
            return true;
          })
          .Case([&](AdamWOp a) {
            ref::AdamWResult r = ref::adamw(
                in(0), in(1), in(2), in(3), env[a.getLr()][0], int64_t(env[a.getStep()][0]),
                env[a.getGradScale()][0], a.getBeta1().convertToDouble(),
                a.getBeta2().convertToDouble(), a.getEps().convertToDouble(),
                a.getWeightDecay().convertToDouble());
            results.push_back(std::move(r.param));
            results.push_back(std::move(r.m));
            results.push_back(std::move(r.v));
            return true;
          })
          // Fused ops (LlamaOps.td, "Fused ops"): each result in the op's result order.
          .Case([&](SwiGLUOp) {
            results.push_back(ref::swiglu(in(0)));
            return true;
          })
          .Case([&](SwiGLUGradOp) {
            std::vector<int64_t> shape = in(0).shape;
            if (shape.back() % 2 != 0) {
              failure = "swiglu_grad's input needs an even last dimension (gate and up)";
              return false;
            }
            shape.back() /= 2;
            failure = expectShape(in(1), shape, "swiglu_grad's grad");
            if (!failure.empty())
              return false;
            results.push_back(ref::swigluGrad(in(0), in(1)));
            return true;
          })
          .Case([&](QKVRoPEOp r) {
            int64_t offset = r.getOffset() ? int64_t(env[r.getOffset()][0]) : 0;
            ref::QKV qkv = ref::qkvRope(in(0), r.getHeads(), r.getKvHeads(),
                                        r.getTheta().convertToDouble(), offset);
            results.push_back(std::move(qkv.q));
            results.push_back(std::move(qkv.k));
            results.push_back(std::move(qkv.v));
            return true;
          })
          .Case([&](QKVRoPEGradOp r) {
            const Tensor &dq = in(0), &dk = in(1);
            failure = expectShape(dk, {dq.dim(0), dq.dim(1), dk.dim(2), dq.dim(3)},
                                  "qkv_rope_grad's k_grad");
            if (failure.empty() && dq.dim(3) % 2 != 0)
              failure = "qkv_rope_grad's head_dim must be even";
            if (!failure.empty())
              return false;
            int64_t offset = r.getOffset() ? int64_t(env[r.getOffset()][0]) : 0;
            results.push_back(
                ref::qkvRopeGrad(dq, dk, in(2), r.getTheta().convertToDouble(), offset));
            return true;
          })
          .Case([&](AddRMSNormOp n) {
            ref::AddRMSNormResult r =
                ref::addRmsNorm(in(0), in(1), in(2), n.getEps().convertToDouble());
            results.push_back(std::move(r.sum));
            results.push_back(std::move(r.normed));
            return true;
          })
          .Case([&](AddRMSNormGradOp n) {
            failure = expectShape(in(1), {in(0).dim(-1)}, "add_rms_norm_grad's weight");
            if (!failure.empty())
              return false;
            ref::RMSNormGrads g = ref::addRmsNormGrad(in(0), in(1), in(2), in(3),
                                                      n.getEps().convertToDouble());
            results.push_back(std::move(g.input));
            results.push_back(std::move(g.weight));
            return true;
          })
          .Case([&](FlashAttentionOp a) {
            ref::FlashAttentionResult r = ref::flashAttention(
                in(0), in(1), in(2), a.getCausal(), a.getWindow().value_or(0),
                a.getEffectiveScale(), a.getBlockQ(), a.getBlockK());
            results.push_back(std::move(r.out));
            results.push_back(std::move(r.lse));
            return true;
          })
          .Case([&](FlashAttentionGradOp a) {
            const Tensor &q = in(0);
            failure = attentionShapes(q, in(1), in(2), "flash_attention_grad");
            if (failure.empty())
              failure = expectShape(in(3), q.shape, "flash_attention_grad's output");
            if (failure.empty())
              failure = expectShape(in(4), {q.dim(0), q.dim(1), q.dim(2)},
                                    "flash_attention_grad's lse");
            if (!failure.empty())
              return false;
            ref::AttentionGrads g = ref::flashAttentionGrad(
                q, in(1), in(2), in(3), in(4), in(5), a.getCausal(), a.getWindow().value_or(0),
                a.getEffectiveScale(), a.getBlockQ(), a.getBlockK());
            results.push_back(std::move(g.query));
            results.push_back(std::move(g.key));
            results.push_back(std::move(g.value));
            return true;
          })
          .Case([&](AttentionLSEOp a) {
            failure = attentionShapes(in(0), in(1), in(1), "attention_lse");
            if (!failure.empty())
              return false;
            // attention_lse has no value operand: the key's head_dim stands in for it in
            // the default scale, 1/sqrt(head_dim).
            results.push_back(ref::attentionLse(
                in(0), in(1), a.getCausal(), a.getWindow().value_or(0),
                attentionScale(a.getScale(), a.getQuery(), a.getKey(), a.getKey())));
            return true;
          })
          .Case([&](LogSumExpOp) {
            results.push_back(ref::logsumexp(in(0)));
            return true;
          })
          .Case([&](FusedCrossEntropyOp c) {
            Tensor loss, lse;
            if (!ref::fusedCrossEntropy(in(0), in(1), c.getIgnoreIndex(), c.getChunk(), loss,
                                        lse, &failure))
              return false;
            results.push_back(std::move(loss));
            results.push_back(std::move(lse));
            return true;
          })
          .Case([&](FusedCrossEntropyGradOp c) {
            std::vector<int64_t> rows = in(0).shape;
            if (rows.empty()) {
              failure = "fused_cross_entropy_grad's logits need a vocabulary dimension";
              return false;
            }
            rows.pop_back();
            failure = expectShape(in(1), rows, "fused_cross_entropy_grad's targets");
            if (failure.empty())
              failure = expectShape(in(2), rows, "fused_cross_entropy_grad's lse");
            if (!failure.empty())
              return false;
            Tensor out;
            if (!ref::fusedCrossEntropyGrad(in(0), in(1), in(2), in(3)[0], c.getIgnoreIndex(),
                                            c.getChunk(), out, &failure))
              return false;
            results.push_back(std::move(out));
            return true;
          })
          .Case([&](MultiAdamWOp a) {
            auto tensors = [&](ValueRange values) {
              std::vector<const Tensor *> out;
              for (Value v : values)
                out.push_back(&env[v]);
              return out;
            };
            std::vector<ref::AdamWResult> r = ref::multiAdamw(
                tensors(a.getParams()), tensors(a.getGrads()), tensors(a.getMs()),
                tensors(a.getVs()), env[a.getLr()][0], int64_t(env[a.getStep()][0]),
                env[a.getGradScale()][0], a.getBeta1().convertToDouble(),
                a.getBeta2().convertToDouble(), a.getEps().convertToDouble(),
                std::vector<double>(a.getWeightDecays().begin(), a.getWeightDecays().end()));
            // All new parameters, then all first moments, then all second moments.
            for (ref::AdamWResult &u : r)
              results.push_back(std::move(u.param));
            for (ref::AdamWResult &u : r)
              results.push_back(std::move(u.m));
            for (ref::AdamWResult &u : r)
              results.push_back(std::move(u.v));
            return true;
          })
          .Case([&](FusedElementwiseOp f) {
            std::vector<const Tensor *> ins;
            for (Value v : f.getInputs())
              ins.push_back(&env[v]);
            Tensor out;
            if (!fusedElementwise(f, ins, precision_, out, &failure))
              return false;
            results.push_back(std::move(out));
            return true;
          })
          .Case([&](arith::ConstantOp c) {
            auto dense = dyn_cast<DenseElementsAttr>(c.getValue());
            auto type = dyn_cast<RankedTensorType>(c.getType());
            std::optional<DType> dtype = type ? toDType(type.getElementType()) : std::nullopt;
            if (!dense || !dtype) {
              failure = "only dense tensor constants of f32/bf16/f16/i32/i64 are supported";
              return false;
            }
            Tensor t(*dtype, std::vector<int64_t>(type.getShape()));
            int64_t i = 0;
            if (isFloat(*dtype))
              for (APFloat v : dense.getValues<APFloat>())
                t[i++] = v.convertToDouble();
            else
              for (APInt v : dense.getValues<APInt>())
                t[i++] = double(v.getSExtValue());
            results.push_back(std::move(t));
            return true;
          })
          .Case([&](shard::ProcessLinearIndexOp) {
            results.emplace_back(DType::I64, std::vector<int64_t>{}, double(rank_));
            return true;
          })
          .Case<shard::AllGatherOp, shard::AllReduceOp, shard::ReduceScatterOp>(
              [&](Operation *c) {
                std::vector<Tensor> operands;
                for (Value v : c->getOperands())
                  operands.push_back(env[v]);
                return collective(c, operands, results, &failure);
              })
          .Default([&](Operation *) {
            failure = "the interpreter does not support this op";
            return false;
          });

  if (!ok) {
    *error = locString(op) + ": " + failure;
    return false;
  }
  if (results.size() != op->getNumResults()) {
    *error = locString(op) + ": produced " + std::to_string(results.size()) +
             " values for " + std::to_string(op->getNumResults()) + " results";
    return false;
  }
  for (auto [value, t] : llvm::zip(op->getResults(), results)) {
    auto type = dyn_cast<RankedTensorType>(value.getType());
    if (type) {
      for (int64_t d = 0; d < type.getRank(); ++d)
        if (d >= t.rank() || (!type.isDynamicDim(d) && type.getDimSize(d) != t.shape[d])) {
          *error = locString(op) + ": computed " + t.describe() +
                   " but the IR declares " + typeString(type);
          return false;
        }
      t.dtype = *toDType(type.getElementType());
      if (precision_ == Precision::F32 || !isFloat(t.dtype))
        t.round();
    }
    env[value] = std::move(t);
  }
  return true;
}

//===----------------------------------------------------------------------------------===//
// Collectives
//===----------------------------------------------------------------------------------===//

namespace {

/// The ranks of `rank`'s group on `gridShape` along `axes`, ordered by their coordinates on
/// those axes (row-major): the ranks that share `rank`'s coordinates on every other axis.
std::vector<int64_t> groupOf(int64_t rank, ArrayRef<int64_t> gridShape, ArrayRef<int16_t> axes) {
  size_t n = gridShape.size();
  std::vector<int64_t> coord(n);
  for (int64_t d = int64_t(n) - 1, r = rank; d >= 0; --d) {
    coord[d] = r % gridShape[d];
    r /= gridShape[d];
  }
  int64_t count = 1;
  for (int16_t a : axes)
    count *= gridShape[a];
  std::vector<int64_t> members;
  for (int64_t k = 0; k < count; ++k) {
    std::vector<int64_t> c = coord;
    for (int64_t i = int64_t(axes.size()) - 1, rest = k; i >= 0; --i) {
      c[axes[i]] = rest % gridShape[axes[i]];
      rest /= gridShape[axes[i]];
    }
    int64_t linear = 0;
    for (size_t d = 0; d < n; ++d)
      linear = linear * gridShape[d] + c[d];
    members.push_back(linear);
  }
  return members;
}

bool reduceInto(Tensor &acc, const Tensor &x, shard::ReductionKind kind, std::string *error) {
  for (int64_t i = 0; i < acc.numElements(); ++i) {
    switch (kind) {
    case shard::ReductionKind::Sum:
    case shard::ReductionKind::Average:
      acc[i] += x[i];
      break;
    case shard::ReductionKind::Max:
      acc[i] = std::max(acc[i], x[i]);
      break;
    case shard::ReductionKind::Min:
      acc[i] = std::min(acc[i], x[i]);
      break;
    case shard::ReductionKind::Product:
      acc[i] *= x[i];
      break;
    default:
      *error = "reduction " + shard::stringifyReductionKind(kind).str() +
               " is not supported by the interpreter";
      return false;
    }
  }
  return true;
}

} // namespace

bool Interpreter::collective(Operation *op, const std::vector<Tensor> &operands,
                             std::vector<Tensor> &results, std::string *error) {
  auto gridAttr = op->getAttrOfType<FlatSymbolRefAttr>("grid");
  SymbolTableCollection symbols;
  shard::GridOp grid = shard::getGridOrNull(op, gridAttr, symbols);
  if (!grid) {
    *error = "unknown grid";
    return false;
  }
  ArrayRef<int64_t> gridShape = grid.getShape();
  int64_t gridSize = 1;
  for (int64_t d : gridShape) {
    if (ShapedType::isDynamic(d)) {
      *error = "grid @" + grid.getSymName().str() + " has a dynamic shape";
      return false;
    }
    gridSize *= d;
  }
  int64_t ranks = group_ ? group_->size() : 1;
  if (gridSize != ranks) {
    *error = "grid @" + grid.getSymName().str() + " has " + std::to_string(gridSize) +
             " processes but the interpreter runs " + std::to_string(ranks) + " rank(s)";
    return false;
  }
  auto axesAttr = op->getAttrOfType<DenseI16ArrayAttr>("grid_axes");
  ArrayRef<int16_t> axes = axesAttr ? axesAttr.asArrayRef() : ArrayRef<int16_t>();
  const Tensor &mine = operands[0];
  std::vector<Tensor> all;
  if (group_) {
    std::string what = op->getName().getStringRef().str() + " of " + mine.describe();
    if (!group_->exchange(rank_, what, mine, all, error))
      return false;
  } else {
    all.push_back(mine);
  }
  std::vector<int64_t> members = groupOf(rank_, gridShape, axes);
  int64_t position =
      std::find(members.begin(), members.end(), int64_t(rank_)) - members.begin();

  if (auto gather = dyn_cast<shard::AllGatherOp>(op)) {
    std::vector<const Tensor *> parts;
    for (int64_t m : members)
      parts.push_back(&all[m]);
    results.push_back(ref::concat(parts, gather.getGatherAxis().getSExtValue()));
    return true;
  }
  shard::ReductionKind kind = isa<shard::AllReduceOp>(op)
                                  ? cast<shard::AllReduceOp>(op).getReduction()
                                  : cast<shard::ReduceScatterOp>(op).getReduction();
  Tensor acc = all[members[0]];
  for (size_t i = 1; i < members.size(); ++i)
    if (!reduceInto(acc, all[members[i]], kind, error))
      return false;
  if (kind == shard::ReductionKind::Average)
    for (double &v : acc.data)
      v /= double(members.size());
  if (isa<shard::AllReduceOp>(op)) {
    results.push_back(std::move(acc));
    return true;
  }
  int64_t axis = cast<shard::ReduceScatterOp>(op).getScatterAxis().getSExtValue();
  int64_t extent = acc.shape[axis], parts = int64_t(members.size());
  if (extent % parts != 0) {
    *error = "reduce_scatter: dim " + std::to_string(axis) + " (" + std::to_string(extent) +
             ") is not divisible by the group size (" + std::to_string(parts) + ")";
    return false;
  }
  results.push_back(ref::slice(acc, axis, position * (extent / parts), extent / parts));
  return true;
}
