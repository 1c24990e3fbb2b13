//! Load an int8 TensorFlow Lite model into a host plan.
//!
//! The flatbuffer is read with code generated from TFLite's official schema
//! (see `schema/README.md`); every access is bounds-checked, so a malformed
//! or truncated model is an error, never a trap. Each operator maps onto a
//! host kernel; anything else is refused before the host is touched, naming
//! the operator and its index. Activations share one arena planned by
//! tensor lifetimes ([`arena`]); weights are uploaded once, copied into
//! kernel-ready form by the host, and their handles dropped.

pub mod arena;
mod ops;
#[allow(
    clippy::all,
    unused,
    unreachable_pub,
    missing_docs,
    non_camel_case_types
)]
pub mod schema;
pub mod summary;

pub use crate::model::{LoadError, TensorInfo};
use crate::nn::{Dtype, ExecOptions, NnError, Plan, Quantization, Semantics, Tensor, TensorDesc};
use ops::{Ctx, Io, Kind, ModelOp};
use schema::tflite as fb;
use std::borrow::Cow;
pub use summary::{OpSummary, Summary, summarize};

/// Arena offsets are aligned to this many bytes.
pub const ARENA_ALIGN: usize = 16;

impl From<planus::Error> for LoadError {
    fn from(e: planus::Error) -> Self {
        LoadError::Malformed(e.to_string())
    }
}

/// How to load.
#[derive(Clone, Copy, Debug)]
pub struct LoadOptions {
    /// Whose arithmetic to reproduce: the TFLite interpreter's reference
    /// kernels (default) or TensorFlow Lite Micro.
    pub semantics: Semantics,
    /// Read this tensor (by index in the model) as the output instead of the
    /// model's own: for comparing intermediate activations with a reference.
    pub output_tensor: Option<usize>,
}

impl Default for LoadOptions {
    fn default() -> Self {
        LoadOptions {
            semantics: Semantics::TfliteReference,
            output_tensor: None,
        }
    }
}

/// A model recorded as a host plan, ready to run.
pub struct Model {
    plan: Plan,
    input: Tensor,
    output: Tensor,
    input_info: TensorInfo,
    output_info: TensorInfo,
    arena_bytes: usize,
    operators: Vec<String>,
}

impl Model {
    pub fn input(&self) -> &TensorInfo {
        &self.input_info
    }

    pub fn output(&self) -> &TensorInfo {
        &self.output_info
    }

    /// Size of the planned activation arena.
    pub fn arena_bytes(&self) -> usize {
        self.arena_bytes
    }

    /// Operator names in execution order (RESHAPE included even when aliased away).
    pub fn operators(&self) -> &[String] {
        &self.operators
    }

    /// Run on `data`, which holds k ≥ 1 whole input tensors; returns the k outputs.
    pub fn invoke(&self, data: &[u8]) -> Result<Vec<u8>, NnError> {
        self.plan.invoke(&self.input, data, &self.output)
    }

    /// Read and validate `bytes` without the host: every check [`load`](Self::load)
    /// makes before its first host call. Returns the model's input and
    /// output and its operators' names. For tools, and for fuzzing the
    /// reader natively.
    pub fn inspect(bytes: &[u8]) -> Result<(TensorInfo, TensorInfo, Vec<String>), LoadError> {
        let parsed = Parsed::read(bytes)?;
        Ok((
            parsed.info(parsed.input)?,
            parsed.info(parsed.output)?,
            parsed.ops.iter().map(|op| op.name.clone()).collect(),
        ))
    }

    /// Load `bytes` and record its plan on the host.
    pub fn load(bytes: &[u8], options: LoadOptions) -> Result<Model, LoadError> {
        let mut parsed = Parsed::read(bytes)?;
        if let Some(t) = options.output_tensor {
            if t >= parsed.tensors.len() || parsed.tensors[t].data.is_some() {
                return Err(LoadError::Unsupported(format!(
                    "tensor {t} is not an activation of this model"
                )));
            }
            parsed.output = t;
        }
        parsed.record(options)
    }
}

/// A tensor as the flatbuffer describes it.
pub(crate) struct FbTensor<'a> {
    pub name: String,
    pub dtype: Dtype,
    pub shape: Vec<u32>,
    pub quant: Option<Quantization>,
    /// Constant data, if the tensor has any.
    pub data: Option<&'a [u8]>,
    /// Whether the model leaves a dimension open (-1 in its shape
    /// signature); its shape is then inferred for a batch of one.
    pub dynamic: bool,
    /// A state tensor an operator keeps between invocations (an LSTM's
    /// hidden and cell state). The host operators keep their own state, so
    /// these get no storage; an int16 one is typed `Uint8` here, since no
    /// other tensor of that type is read.
    pub variable: bool,
}

impl FbTensor<'_> {
    pub fn desc(&self) -> TensorDesc {
        TensorDesc::new(self.dtype, &self.shape, self.quant.clone())
    }

    pub fn byte_len(&self) -> usize {
        self.desc().byte_len()
    }
}

/// Everything read from the flatbuffer, validated, before any host call.
struct Parsed<'a> {
    tensors: Vec<FbTensor<'a>>,
    ops: Vec<ModelOp>,
    input: usize,
    output: usize,
}

fn dtype(t: fb::TensorType) -> Option<Dtype> {
    Some(match t {
        fb::TensorType::Int8 => Dtype::Int8,
        fb::TensorType::Uint8 => Dtype::Uint8,
        fb::TensorType::Int32 => Dtype::Int32,
        fb::TensorType::Float32 => Dtype::Float32,
        _ => return None,
    })
}

impl<'a> Parsed<'a> {
    fn read(bytes: &'a [u8]) -> Result<Self, LoadError> {
        if bytes.len() < 8 || &bytes[4..8] != b"TFL3" {
            return Err(LoadError::Malformed(
                "no TFL3 file identifier; not a TensorFlow Lite model".into(),
            ));
        }
        let model = <fb::ModelRef<'a> as planus::ReadAsRoot>::read_as_root(bytes)?;
        let version = model.version()?;
        if version != 3 {
            return Err(LoadError::Unsupported(format!(
                "schema version {version}, expected 3"
            )));
        }
        let subgraphs = model
            .subgraphs()?
            .ok_or_else(|| LoadError::Malformed("no subgraphs".into()))?;
        if subgraphs.len() != 1 {
            return Err(LoadError::Unsupported(format!(
                "{} subgraphs; only single-subgraph models are supported",
                subgraphs.len()
            )));
        }
        let sg = subgraphs
            .get(0)
            .ok_or_else(|| LoadError::Malformed("no subgraph 0".into()))??;
        let buffers = model.buffers()?;
        let buffer_data = |idx: u32| -> Result<Option<&'a [u8]>, LoadError> {
            if idx == 0 {
                return Ok(None);
            }
            let Some(buffers) = buffers else {
                return Err(LoadError::Malformed(format!(
                    "buffer {idx} referenced but the model has none"
                )));
            };
            let b = buffers
                .get(idx as usize)
                .ok_or_else(|| LoadError::Malformed(format!("buffer {idx} does not exist")))??;
            Ok(b.data()?.filter(|d| !d.is_empty()))
        };

        let fb_tensors = sg
            .tensors()?
            .ok_or_else(|| LoadError::Malformed("subgraph has no tensors".into()))?;
        let mut tensors = Vec::with_capacity(fb_tensors.len());
        for (i, t) in fb_tensors.iter().enumerate() {
            let t = t?;
            let name = t.name()?.unwrap_or("").to_string();
            let ty = t.type_()?;
            let variable = t.is_variable()?;
            let dtype = match dtype(ty) {
                Some(d) => d,
                None if variable && ty == fb::TensorType::Int16 => Dtype::Uint8,
                None => {
                    return Err(LoadError::Unsupported(format!(
                        "tensor {i} ({name}) has type {ty:?}"
                    )));
                }
            };
            let shape: Vec<u32> = match t.shape()? {
                Some(s) => s
                    .iter()
                    .map(|d| {
                        u32::try_from(d).map_err(|_| {
                            LoadError::Malformed(format!("tensor {i} has dimension {d}"))
                        })
                    })
                    .collect::<Result<_, _>>()?,
                None => Vec::new(),
            };
            if t.sparsity()?.is_some() {
                return Err(LoadError::Unsupported(format!(
                    "tensor {i} ({name}) is sparse"
                )));
            }
            let quant = match t.quantization()? {
                Some(q) => {
                    let scales: Vec<f32> =
                        q.scale()?.map(|v| v.iter().collect()).unwrap_or_default();
                    let zps: Vec<i64> = q
                        .zero_point()?
                        .map(|v| v.iter().collect())
                        .unwrap_or_default();
                    if scales.is_empty() {
                        None
                    } else {
                        let zero_points = if zps.is_empty() {
                            vec![0; scales.len()]
                        } else {
                            zps.iter()
                                .map(|&z| z.clamp(i32::MIN as i64, i32::MAX as i64) as i32)
                                .collect()
                        };
                        let axis = u32::try_from(q.quantized_dimension()?).map_err(|_| {
                            LoadError::Malformed(format!(
                                "tensor {i} has a negative quantized dimension"
                            ))
                        })?;
                        Some(Quantization {
                            scales,
                            zero_points,
                            axis,
                        })
                    }
                }
                None => None,
            };
            let data = buffer_data(t.buffer()?)?;
            if variable && data.is_some() {
                return Err(LoadError::Unsupported(format!(
                    "state tensor {i} ({name}) has initial data"
                )));
            }
            let dynamic = t
                .shape_signature()?
                .is_some_and(|s| s.iter().any(|d| d < 0));
            let ft = FbTensor {
                name,
                dtype,
                shape,
                quant,
                data,
                dynamic,
                variable,
            };
            if let Some(d) = data {
                if d.len() != ft.byte_len() {
                    return Err(LoadError::Malformed(format!(
                        "tensor {i} ({}) has {} bytes of data for shape {:?}",
                        ft.name,
                        d.len(),
                        ft.shape
                    )));
                }
            }
            tensors.push(ft);
        }

        let io = |v: Option<planus::Vector<'a, i32>>, what: &str| -> Result<usize, LoadError> {
            let v: Vec<i32> = v.map(|v| v.iter().collect()).unwrap_or_default();
            match v.as_slice() {
                [i] if (*i as usize) < tensors.len() && *i >= 0 => Ok(*i as usize),
                [_] => Err(LoadError::Malformed(format!(
                    "{what} tensor index out of range"
                ))),
                other => Err(LoadError::Unsupported(format!(
                    "{} {what}s; exactly one is supported",
                    other.len()
                ))),
            }
        };
        let input = io(sg.inputs()?, "input")?;
        let output = io(sg.outputs()?, "output")?;

        let codes = model
            .operator_codes()?
            .ok_or_else(|| LoadError::Malformed("no operator codes".into()))?;
        let fb_ops = sg
            .operators()?
            .ok_or_else(|| LoadError::Malformed("no operators".into()))?;
        let mut ops_out = Vec::with_capacity(fb_ops.len());
        for (index, op) in fb_ops.iter().enumerate() {
            let op = op?;
            let code = codes.get(op.opcode_index()? as usize).ok_or_else(|| {
                LoadError::Malformed(format!("operator {index} has an unknown opcode index"))
            })??;
            let builtin = ops::builtin_code(&code)?;
            ops_out.push(ModelOp::read(index, builtin, &op, &tensors)?);
        }
        Ok(Parsed {
            tensors,
            ops: ops_out,
            input,
            output,
        })
    }

    fn info(&self, i: usize) -> Result<TensorInfo, LoadError> {
        let t = &self.tensors[i];
        let (scale, zero_point) = t
            .quant
            .as_ref()
            .map(|q| (q.scales[0], q.zero_points[0]))
            .unwrap_or((1.0, 0));
        Ok(TensorInfo {
            name: t.name.clone(),
            shape: t.shape.clone(),
            dtype: t.dtype,
            scale,
            zero_point,
            byte_len: t.byte_len(),
        })
    }

    /// Run operator `index` on the host now, over constant inputs, and return
    /// its output bytes: constant folding (SHAPE-derived reshapes, int32 index
    /// arithmetic, quantized constants).
    fn fold(
        &self,
        index: usize,
        op: &ModelOp,
        consts: &[Option<Cow<'a, [u8]>>],
        semantics: Semantics,
    ) -> Result<Vec<u8>, LoadError> {
        let host = |error: NnError| LoadError::Host {
            context: format!("folding operator {index} ({})", op.name),
            error,
        };
        let mut handles: Vec<Option<Tensor>> = (0..self.tensors.len()).map(|_| None).collect();
        for t in op.tensors() {
            if handles[t].is_none() {
                let data = consts[t].as_deref().unwrap_or(&[]);
                handles[t] = Some(Tensor::with_data(&self.tensors[t].desc(), data).map_err(host)?);
            }
        }
        let pack_views =
            self.pack_views(op, |t, desc| handles[t].as_ref().map(|h| h.view(0, desc)))?;
        let ctx = Ctx {
            tensors: &self.tensors,
            consts,
        };
        let io = Io {
            handles: &handles,
            pack_views: &pack_views,
            aliased: false,
        };
        if let Some(host_op) = op.host_op(index, &io, &ctx)? {
            host_op.execute(ExecOptions { semantics }).map_err(host)?;
        }
        handles[op.outputs[0]]
            .as_ref()
            .map(|t| t.read())
            .ok_or_else(|| LoadError::Malformed(format!("operator {index} has no output")))
    }

    /// PACK's inputs viewed with the new axis, as CONCATENATION wants them.
    fn pack_views(
        &self,
        op: &ModelOp,
        view: impl Fn(usize, &TensorDesc) -> Option<Result<Tensor, NnError>>,
    ) -> Result<Vec<Tensor>, LoadError> {
        let Kind::Pack(ops::Pack { axis }) = op.kind else {
            return Ok(vec![]);
        };
        let mut out = Vec::new();
        for t in op.inputs.iter().flatten().copied() {
            let ft = &self.tensors[t];
            let rank = ft.shape.len() as i32;
            let at = if axis < 0 { axis + rank + 1 } else { axis };
            if !(0..=rank).contains(&at) {
                return Err(LoadError::Malformed(format!(
                    "PACK axis {axis} for rank {rank}"
                )));
            }
            let mut shape = ft.shape.clone();
            shape.insert(at as usize, 1);
            let desc = TensorDesc::new(ft.dtype, &shape, ft.quant.clone());
            let v = view(t, &desc)
                .ok_or_else(|| LoadError::Malformed(format!("tensor {t} has no storage")))?;
            out.push(v.map_err(|error| LoadError::Host {
                context: format!("PACK view of tensor {t}"),
                error,
            })?);
        }
        Ok(out)
    }

    fn record(mut self, options: LoadOptions) -> Result<Model, LoadError> {
        let n_ops = self.ops.len();
        let n = self.tensors.len();
        // Constant folding: SHAPE, reshapes of constants, and any operator
        // whose data inputs are all constant run now, once.
        let mut consts: Vec<Option<Cow<'a, [u8]>>> = self
            .tensors
            .iter()
            .map(|t| t.data.map(Cow::Borrowed))
            .collect();
        let mut folded = vec![false; n_ops];
        for index in 0..n_ops {
            let op = &self.ops[index];
            let out = op.outputs[0];
            // Shapes the model leaves open follow from the inputs (batch 1).
            if self.tensors[out].dynamic {
                let shape = op.infer_shape(
                    index,
                    &Ctx {
                        tensors: &self.tensors,
                        consts: &consts,
                    },
                )?;
                self.tensors[out].shape = shape;
            }
            let op = &self.ops[index];
            let value: Option<Vec<u8>> = match op.kind {
                Kind::Shape(_) => {
                    if self.tensors[out].dtype != Dtype::Int32 {
                        return Err(LoadError::Unsupported(format!(
                            "operator {index} (SHAPE) outputs {:?}",
                            self.tensors[out].dtype
                        )));
                    }
                    Some(
                        self.tensors[op.input(0)]
                            .shape
                            .iter()
                            .flat_map(|&d| (d as i32).to_le_bytes())
                            .collect(),
                    )
                }
                _ if !op.data_inputs().iter().all(|&t| consts[t].is_some()) => None,
                Kind::Reshape(_) => consts[op.input(0)].as_deref().map(<[u8]>::to_vec),
                _ => Some(self.fold(index, op, &consts, options.semantics)?),
            };
            if let Some(v) = value {
                if v.len() != self.tensors[out].byte_len() {
                    return Err(LoadError::Malformed(format!(
                        "operator {index} ({}) folds to {} bytes for shape {:?}",
                        op.name,
                        v.len(),
                        self.tensors[out].shape
                    )));
                }
                consts[out] = Some(Cow::Owned(v));
                folded[index] = true;
            }
        }
        if consts[self.input].is_some() || consts[self.output].is_some() {
            return Err(LoadError::Unsupported(
                "the model's input or output is a constant".into(),
            ));
        }
        // RESHAPE, EXPAND_DIMS and SQUEEZE of an activation alias their input.
        let mut root: Vec<usize> = (0..n).collect();
        for (index, op) in self.ops.iter().enumerate() {
            if op.is_reshape() && !folded[index] {
                let (i, o) = (op.input(0), op.outputs[0]);
                if o != self.input {
                    root[o] = root[i];
                }
            }
        }
        // Lifetimes of activation roots.
        let mut first = vec![usize::MAX; n];
        let mut last = vec![0usize; n];
        let touch = |t: usize, at: usize, first: &mut Vec<usize>, last: &mut Vec<usize>| {
            let r = root[t];
            first[r] = first[r].min(at);
            last[r] = last[r].max(at);
        };
        touch(self.input, 0, &mut first, &mut last);
        touch(self.output, n_ops, &mut first, &mut last);
        for (at, op) in self.ops.iter().enumerate() {
            if folded[at] {
                continue;
            }
            for t in op.tensors() {
                if consts[t].is_none() && !self.tensors[t].variable {
                    touch(t, at, &mut first, &mut last);
                }
            }
        }
        let roots: Vec<usize> = (0..n)
            .filter(|&t| root[t] == t && first[t] != usize::MAX)
            .collect();
        let lifetimes: Vec<arena::Lifetime> = roots
            .iter()
            .map(|&r| {
                // A root's bytes must hold its largest alias (they are equal for RESHAPE).
                let size = (0..n)
                    .filter(|&t| root[t] == r)
                    .map(|t| self.tensors[t].byte_len())
                    .max()
                    .unwrap_or(0);
                arena::Lifetime {
                    size,
                    first: first[r],
                    last: last[r],
                }
            })
            .collect();
        let planned = arena::plan(&lifetimes, ARENA_ALIGN);
        let mut offset = vec![None; n];
        for (k, &r) in roots.iter().enumerate() {
            offset[r] = Some(planned.offsets[k] as u64);
        }

        let host = |context: String| {
            move |error: NnError| LoadError::Host {
                context: context.clone(),
                error,
            }
        };
        let arena = Tensor::create(&TensorDesc::new(
            Dtype::Uint8,
            &[planned.peak.max(1) as u32],
            None,
        ))
        .map_err(host(format!("arena of {} bytes", planned.peak)))?;
        // Views for activations; constants become owned tensors when first used.
        let mut handles: Vec<Option<Tensor>> = (0..n).map(|_| None).collect();
        for t in 0..n {
            if consts[t].is_some() {
                continue;
            }
            if let Some(off) = offset[root[t]] {
                let v = arena
                    .view(off, &self.tensors[t].desc())
                    .map_err(host(format!("tensor {t} ({})", self.tensors[t].name)))?;
                handles[t] = Some(v);
            }
        }
        let plan = Plan::new(ExecOptions {
            semantics: options.semantics,
        });
        let mut operators = Vec::with_capacity(n_ops);
        for (index, op) in self.ops.iter().enumerate() {
            operators.push(op.name.clone());
            if folded[index] {
                continue;
            }
            for t in op.tensors() {
                if handles[t].is_none() && !self.tensors[t].variable {
                    let ft = &self.tensors[t];
                    let data = consts[t].as_deref().unwrap_or(&[]);
                    handles[t] = Some(Tensor::with_data(&ft.desc(), data).map_err(host(
                        format!("operator {index} ({}): tensor {t} ({})", op.name, ft.name),
                    ))?);
                }
            }
            let pack_views = self.pack_views(op, |t, desc| match offset[root[t]] {
                Some(off) if consts[t].is_none() => Some(arena.view(off, desc)),
                _ => handles[t].as_ref().map(|h| h.view(0, desc)),
            })?;
            let aliased = op.is_reshape() && root[op.outputs[0]] == root[op.input(0)];
            let ctx = Ctx {
                tensors: &self.tensors,
                consts: &consts,
            };
            let io = Io {
                handles: &handles,
                pack_views: &pack_views,
                aliased,
            };
            if let Some(host_op) = op.host_op(index, &io, &ctx)? {
                host_op
                    .push(&plan)
                    .map_err(host(format!("operator {index} ({})", op.name)))?;
            }
        }
        let take = |handles: &mut Vec<Option<Tensor>>, t: usize| {
            handles[t]
                .take()
                .ok_or_else(|| LoadError::Malformed(format!("tensor {t} is never produced")))
        };
        let input = take(&mut handles, self.input)?;
        let output = take(&mut handles, self.output)?;
        Ok(Model {
            plan,
            input,
            output,
            input_info: self.info(self.input)?,
            output_info: self.info(self.output)?,
            arena_bytes: planned.peak,
            operators,
        })
        // Every other handle drops here; the plan holds what it needs on the host.
    }
}
