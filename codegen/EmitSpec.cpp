//===- EmitSpec.cpp - literals and the ProgramSpec tables of generated programs -----===//
#include "codegen/EmitSpec.h"

#include "llvm/Support/raw_ostream.h"

#include <cctype>
#include <cstdio>

using namespace llamac::kir;

std::string llamac::kir::lit(double v) {
  char buf[64];
  snprintf(buf, sizeof buf, "%.17g", v);
  std::string s = buf;
  if (s.find_first_of(".eEn") == std::string::npos)
    s += ".0";
  return s;
}

std::string llamac::kir::cType(ElemType t) {
  switch (t) {
  case ElemType::F32:
    return "float";
  case ElemType::I32:
    return "int32_t";
  case ElemType::I64:
    return "int64_t";
  case ElemType::I8:
    return "int8_t";
  case ElemType::BF16:
    return "uint16_t";
  }
  return "float";
}

std::string llamac::kir::escape(const std::string &s) {
  std::string r;
  for (char c : s) {
    if (c == '"' || c == '\\')
      r += '\\';
    if (c == '\n') {
      r += "\\n";
      continue;
    }
    r += c;
  }
  return r;
}

std::string llamac::kir::identifier(const std::string &s) {
  std::string r;
  for (char c : s)
    r += (isalnum(static_cast<unsigned char>(c)) ? c : '_');
  return r;
}

std::string llamac::kir::pointwiseBody(const Launch &launch, const char *const math[5]) {
  std::string out;
  auto v = [](int k) { return "v" + std::to_string(k); };
  for (size_t k = 0; k < launch.body.size(); ++k) {
    const ScalarOp &o = launch.body[k];
    std::string e;
    switch (o.kind) {
    case ScalarOp::Input:
      e = "in" + std::to_string(o.a) + "[i]";
      break;
    case ScalarOp::Constant:
      e = "float(" + lit(o.value) + ")";
      break;
    case ScalarOp::Add:
      e = v(o.a) + " + " + v(o.b);
      break;
    case ScalarOp::Sub:
      e = v(o.a) + " - " + v(o.b);
      break;
    case ScalarOp::Mul:
      e = v(o.a) + " * " + v(o.b);
      break;
    case ScalarOp::Div:
      e = v(o.a) + " / " + v(o.b);
      break;
    case ScalarOp::Maximum:
      e = std::string(math[4]) + "(" + v(o.a) + ", " + v(o.b) + ")";
      break;
    case ScalarOp::Neg:
      e = "-" + v(o.a);
      break;
    case ScalarOp::Exp:
    case ScalarOp::Log:
    case ScalarOp::Sqrt:
    case ScalarOp::Rsqrt:
      e = std::string(math[o.kind - ScalarOp::Exp]) + "(" + v(o.a) + ")";
      break;
    }
    out += "float " + v(int(k)) + " = " + e + "; ";
  }
  out += "out[i] = " + v(int(launch.body.size()) - 1) + ";";
  return out;
}

std::string llamac::kir::collectiveWhat(const Program &p, const Launch &launch) {
  if (!isCollective(launch.kind))
    return "";
  int64_t unit = launch.intAttr("unit");
  if (unit >= 0 && unit < int64_t(p.params.size()))
    return p.params[unit].name;
  return "the values of " + launch.origin;
}

void llamac::kir::emitTensorSpecs(const std::vector<TensorSig> &sigs, const std::string &name,
                     llvm::raw_ostream &os) {
  os << "const rt::TensorSpec " << name << "[] = {\n";
  for (const TensorSig &s : sigs) {
    os << "    {\"" << s.name << "\", rt::ElemType::"
       << (s.type == ElemType::F32   ? "F32"
           : s.type == ElemType::I32 ? "I32"
           : s.type == ElemType::I64 ? "I64"
                                     : "I8")
       << ", "
       << s.shape.size() << ", {";
    for (size_t i = 0; i < s.shape.size(); ++i)
      os << (i ? ", " : "") << s.shape[i];
    os << "}},\n";
  }
  if (sigs.empty())
    os << "    {\"\", rt::ElemType::F32, 0, {}},\n";
  os << "};\n";
}

void llamac::kir::emitProgramSpec(const Program &p, const std::string &createDevice,
                                  llvm::raw_ostream &os) {
  // FSDP units: each one's members, then the layouts the shards point to.
  for (size_t u = 0; u < p.shardLayouts.size(); ++u) {
    os << "const rt::ShardMember kMembers" << u << "[] = {\n";
    for (const ShardMember &m : p.shardLayouts[u].members) {
      os << "    {\"" << escape(m.name) << "\", " << m.offset << ", " << m.elements() << ", "
         << m.shape.size() << ", {";
      for (size_t i = 0; i < m.shape.size(); ++i)
        os << (i ? ", " : "") << m.shape[i];
      os << "}, rt::ParamInit::"
         << (m.init == ParamInit::Zeros ? "Zeros" : m.init == ParamInit::Ones ? "Ones" : "Normal")
         << ", " << lit(m.std) << "},\n";
    }
    os << "};\n";
  }
  if (!p.shardLayouts.empty()) {
    os << "const rt::ShardLayout kLayouts[] = {\n";
    for (size_t u = 0; u < p.shardLayouts.size(); ++u) {
      const ShardLayout &l = p.shardLayouts[u];
      os << "    {" << l.ranks << ", " << l.flat << ", " << l.padded << ", " << l.members.size()
         << ", kMembers" << u << ", " << (l.gatherBytes ? l.gatherBytes : 4) << "},\n";
    }
    os << "};\n\n";
  }

  os << "const rt::ParamSpec kParams[] = {\n";
  for (const Param &q : p.params) {
    const char *role = q.role == ParamRole::Weight     ? "Weight"
                       : q.role == ParamRole::Gradient ? "Gradient"
                       : q.role == ParamRole::AdamM    ? "AdamM"
                                                       : "AdamV";
    const char *init = q.init == ParamInit::Zeros  ? "Zeros"
                       : q.init == ParamInit::Ones ? "Ones"
                                                   : "Normal";
    os << "    {\"" << q.name << "\", rt::ParamRole::" << role << ", " << q.offset << ", "
       << q.elements() << ", " << q.shape.size() << ", {";
    for (size_t i = 0; i < q.shape.size(); ++i)
      os << (i ? ", " : "") << q.shape[i];
    os << "}, rt::ParamInit::" << init << ", " << lit(q.std) << ", rt::ElemType::"
       << (q.quantized ? "I8" : "F32") << ", " << q.scaleOffset << ", "
       << (q.shard >= 0 ? "&kLayouts[" + std::to_string(q.shard) + "]" : "nullptr") << "},\n";
  }
  os << "};\n\n";

  os << "const rt::FunctionSpec kFunctions[] = {\n";
  for (const Function &f : p.functions) {
    std::string id = identifier(f.name);
    os << "    {\"" << f.name << "\", " << f.inputs.size() << ", kIn_" << id << ", "
       << f.outputs.size() << ", kOut_" << id << ", " << f.arenaBytes << ", " << f.buffersBytes
       << ", " << f.launches.size() << ", fn_" << id << "},\n";
  }
  os << "};\n\n";

  os << "const char *const kConfigKeys[] = {";
  for (auto &[k, v] : p.config)
    os << "\"" << escape(k) << "\", ";
  os << "nullptr};\nconst char *const kConfigValues[] = {";
  for (auto &[k, v] : p.config)
    os << "\"" << escape(v) << "\", ";
  os << "nullptr};\n\n";

  os << "const rt::ProgramSpec kProgram = {\n"
     << "    .modelName = \"" << p.modelName << "\",\n"
     << "    .mode = \"" << p.mode << "\",\n"
     << "    .target = \"" << p.target << "\",\n"
     << "    .batch = " << p.batch << ",\n"
     << "    .seq = " << p.seq << ",\n"
     << "    .vocab = " << p.vocab << ",\n"
     << "    .dim = " << p.dim << ",\n"
     << "    .layers = " << p.layers << ",\n"
     << "    .heads = " << p.heads << ",\n"
     << "    .kvHeads = " << p.kvHeads << ",\n"
     << "    .headDim = " << p.headDim << ",\n"
     << "    .ffnDim = " << p.ffnDim << ",\n"
     << "    .maxSeqLen = " << p.maxSeqLen << ",\n"
     << "    .window = " << p.window << ",\n"
     << "    .normEps = " << lit(p.normEps) << ",\n"
     << "    .ropeTheta = " << lit(p.ropeTheta) << ",\n"
     << "    .trainFlopsPerToken = " << lit(p.trainFlopsPerToken) << ",\n"
     << "    .inferFlopsPerToken = " << lit(p.inferFlopsPerToken) << ",\n"
     << "    .trainableElements = " << p.trainableElements() << ",\n"
     << "    .params = kParams,\n"
     << "    .numParams = " << p.params.size() << ",\n"
     << "    .paramBytes = " << p.paramBytes << ",\n"
     << "    .functions = kFunctions,\n"
     << "    .numFunctions = " << p.functions.size() << ",\n"
     << "    .arenaBytes = " << p.arenaBytes() << ",\n"
     << "    .cacheBytes = " << p.cacheBytes << ",\n"
     << "    .configKeys = kConfigKeys,\n"
     << "    .configValues = kConfigValues,\n"
     << "    .numConfig = " << p.config.size() << ",\n"
     << "    .fsdpRanks = " << p.fsdpRanks << ",\n"
     << "    .fsdpReplicas = " << (p.fsdpGrid.size() == 2 ? p.fsdpGrid[0] : 1) << ",\n";
  if (!createDevice.empty())
    os << "    .createDevice = " << createDevice << ",\n";
  os << "};\n\n"
     << "} // namespace\n\n"
     << "int main(int argc, char **argv) {\n"
     << "  return rt::" << (p.mode == "infer" ? "inferMain" : "trainMain")
     << "(argc, argv, kProgram);\n}\n";
}
