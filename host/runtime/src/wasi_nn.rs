//! `wasi:nn@0.2.0-rc-2024-10-28`, the version wasmtime 48's `wasmtime-wasi-nn`
//! implements, served by the SDK's TFLite and ONNX loaders on the host's
//! int8 kernels, so that a guest written for wasmtime's wasi-nn runs here
//! unchanged.
//!
//! The host parses no model: `graph.load` hands the bytes to the loader
//! plugin (the bundled `tflite` plugin, which reads both formats inside its
//! own sandbox) as a fresh instance, under the limits it was loaded with;
//! `compute` is that instance's `process`. So a model's memory, its parse
//! and its inference are bounded exactly as a plugin's are.
//!
//! wasi-nn has no int8 tensor type: int8 and uint8 data travel as `U8`
//! bytes, float32 as `FP32`, int32 as `I32`. Inputs bind by the model's
//! tensor name; `compute` returns every output of the model, each by its
//! name.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use wasmtime::component::{HasData, Linker, Resource, ResourceTable};

use crate::engine::Runtime;
use crate::plugin::{Grants, InitConfig, Instance, Limits, Plugin};

mod generated {
    wasmtime::component::bindgen!({
        path: "../../wit",
        world: "wasi:nn/ml",
        imports: { default: trappable },
        with: {
            "wasi:nn/tensor.tensor": super::NnTensor,
            "wasi:nn/graph.graph": super::NnGraph,
            "wasi:nn/inference.graph-execution-context": super::NnContext,
            "wasi:nn/errors.error": super::NnError,
        },
    });
}

use generated::wasi::nn::errors::{self as werr, ErrorCode};
use generated::wasi::nn::graph::{self as wgraph, ExecutionTarget, GraphEncoding};
use generated::wasi::nn::inference as winf;
use generated::wasi::nn::tensor::{self as wtensor, TensorType};

/// The most graphs a guest may hold at once: each is a loader instance.
const MAX_GRAPHS: usize = 16;

/// A tensor the guest made or a computation returned.
pub struct NnTensor {
    dims: Vec<u32>,
    ty: TensorType,
    data: Vec<u8>,
}

/// An error the guest can read back.
pub struct NnError {
    code: ErrorCode,
    data: String,
}

/// A model's input or output, as the loader describes it.
#[derive(Clone, Debug)]
struct Port {
    name: String,
    dims: Vec<u32>,
    ty: TensorType,
}

/// A loaded model: the loader instance that holds its plan.
struct Loaded {
    instance: Instance,
    input: Port,
    /// At least one.
    outputs: Vec<Port>,
}

impl Port {
    fn byte_len(&self) -> usize {
        self.dims.iter().map(|&d| d as usize).product::<usize>() * element_bytes(self.ty)
    }
}

pub struct NnGraph(Arc<Mutex<Loaded>>);

pub struct NnContext(Arc<Mutex<Loaded>>);

/// Where a store's model loader comes from.
enum Loader {
    None,
    Ready(Plugin),
    /// Loaded at the first `graph.load`, so that plugins that never use
    /// wasi-nn pay nothing for it.
    Lazy {
        runtime: Runtime,
        path: PathBuf,
        limits: Limits,
    },
    Failed(String),
}

/// What a store keeps for wasi-nn: the loader, and how many graphs are live.
pub(crate) struct WasiNn {
    loader: Loader,
    graphs: usize,
}

impl WasiNn {
    /// wasi-nn backed by `loader`; without one every `load` fails with
    /// `unsupported-operation`.
    pub(crate) fn new(loader: Option<Plugin>) -> Self {
        WasiNn {
            loader: loader.map_or(Loader::None, Loader::Ready),
            graphs: 0,
        }
    }

    /// wasi-nn for a plugin instance: the loader plugin at `path`, loaded
    /// on first use with the plugin's own limits (and none of its grants),
    /// so that a model it loads costs what the plugin's own would.
    pub(crate) fn lazy(runtime: Runtime, path: PathBuf, limits: &Limits) -> Self {
        let limits = Limits {
            grants: Grants::default(),
            ..limits.clone()
        };
        WasiNn {
            loader: Loader::Lazy {
                runtime,
                path,
                limits,
            },
            graphs: 0,
        }
    }

    fn loader(&mut self) -> Result<Plugin, String> {
        if let Loader::Lazy {
            runtime,
            path,
            limits,
        } = &self.loader
        {
            self.loader = match runtime.load_file(path, limits.clone()) {
                Ok(p) => Loader::Ready(p),
                Err(e) => Loader::Failed(format!("the model loader did not load: {e}")),
            };
        }
        match &self.loader {
            Loader::Ready(p) => Ok(p.clone()),
            Loader::Failed(e) => Err(e.clone()),
            Loader::None | Loader::Lazy { .. } => Err("this host has no model loader".into()),
        }
    }
}

/// The part of a store the wasi-nn host functions use.
pub(crate) struct WasiNnView<'a> {
    pub(crate) table: &'a mut ResourceTable,
    pub(crate) nn: &'a mut WasiNn,
}

struct WasiNnData;
impl HasData for WasiNnData {
    type Data<'a> = WasiNnView<'a>;
}

pub(crate) fn add_to_linker<T: Send + 'static>(
    linker: &mut Linker<T>,
    view: fn(&mut T) -> WasiNnView<'_>,
) -> wasmtime::Result<()> {
    generated::Ml::add_to_linker::<T, WasiNnData>(linker, view)
}

type Fallible<T> = wasmtime::Result<Result<T, Resource<NnError>>>;

impl WasiNnView<'_> {
    fn error<T>(&mut self, code: ErrorCode, data: impl Into<String>) -> Fallible<T> {
        let e = self.table.push(NnError {
            code,
            data: data.into(),
        })?;
        Ok(Err(e))
    }
}

fn tensor_type(dtype: &str) -> Option<TensorType> {
    match dtype {
        "float32" => Some(TensorType::Fp32),
        "int8" | "uint8" => Some(TensorType::U8),
        "int32" => Some(TensorType::I32),
        _ => None,
    }
}

fn element_bytes(ty: TensorType) -> usize {
    match ty {
        TensorType::Fp16 | TensorType::Bf16 => 2,
        TensorType::Fp32 | TensorType::I32 => 4,
        TensorType::Fp64 | TensorType::I64 => 8,
        TensorType::U8 => 1,
    }
}

/// The loader's description of its model's `which` tensor (`describe=true`).
fn port(v: &serde_json::Value, which: &str) -> Option<Port> {
    port_of(v.get(which)?)
}

/// Every output the loader describes: `outputs`, or the one `output` of a
/// loader (or a model format) that lists no more.
fn output_ports(v: &serde_json::Value) -> Option<Vec<Port>> {
    match v.get("outputs").and_then(|o| o.as_array()) {
        Some(all) if !all.is_empty() => all.iter().map(port_of).collect(),
        _ => Some(vec![port(v, "output")?]),
    }
}

fn port_of(t: &serde_json::Value) -> Option<Port> {
    Some(Port {
        name: t.get("name")?.as_str()?.to_string(),
        dims: t
            .get("shape")?
            .as_array()?
            .iter()
            .map(|d| d.as_u64().and_then(|d| u32::try_from(d).ok()))
            .collect::<Option<Vec<_>>>()?,
        ty: tensor_type(t.get("dtype")?.as_str()?)?,
    })
}

impl wtensor::HostTensor for WasiNnView<'_> {
    fn new(
        &mut self,
        dims: Vec<u32>,
        ty: TensorType,
        data: Vec<u8>,
    ) -> wasmtime::Result<Resource<NnTensor>> {
        // The data was copied out of the guest's memory, which its limit
        // bounds; a tensor whose size disagrees is refused at `compute`.
        Ok(self.table.push(NnTensor { dims, ty, data })?)
    }

    fn dimensions(&mut self, t: Resource<NnTensor>) -> wasmtime::Result<Vec<u32>> {
        Ok(self.table.get(&t)?.dims.clone())
    }

    fn ty(&mut self, t: Resource<NnTensor>) -> wasmtime::Result<TensorType> {
        Ok(self.table.get(&t)?.ty)
    }

    fn data(&mut self, t: Resource<NnTensor>) -> wasmtime::Result<Vec<u8>> {
        Ok(self.table.get(&t)?.data.clone())
    }

    fn drop(&mut self, t: Resource<NnTensor>) -> wasmtime::Result<()> {
        self.table.delete(t)?;
        Ok(())
    }
}

impl wtensor::Host for WasiNnView<'_> {}

impl werr::HostError for WasiNnView<'_> {
    fn code(&mut self, e: Resource<NnError>) -> wasmtime::Result<ErrorCode> {
        Ok(self.table.get(&e)?.code)
    }

    fn data(&mut self, e: Resource<NnError>) -> wasmtime::Result<String> {
        Ok(self.table.get(&e)?.data.clone())
    }

    fn drop(&mut self, e: Resource<NnError>) -> wasmtime::Result<()> {
        self.table.delete(e)?;
        Ok(())
    }
}

impl werr::Host for WasiNnView<'_> {}

impl wgraph::HostGraph for WasiNnView<'_> {
    fn init_execution_context(&mut self, g: Resource<NnGraph>) -> Fallible<Resource<NnContext>> {
        let loaded = self.table.get(&g)?.0.clone();
        Ok(Ok(self.table.push(NnContext(loaded))?))
    }

    fn drop(&mut self, g: Resource<NnGraph>) -> wasmtime::Result<()> {
        self.table.delete(g)?;
        self.nn.graphs = self.nn.graphs.saturating_sub(1);
        Ok(())
    }
}

impl wgraph::Host for WasiNnView<'_> {
    fn load(
        &mut self,
        builder: Vec<Vec<u8>>,
        encoding: GraphEncoding,
        target: ExecutionTarget,
    ) -> Fallible<Resource<NnGraph>> {
        if target != ExecutionTarget::Cpu {
            return self.error(
                ErrorCode::UnsupportedOperation,
                "this host runs models on its CPU only",
            );
        }
        let [model] = builder.as_slice() else {
            return self.error(
                ErrorCode::InvalidArgument,
                format!(
                    "{} graph parts: TFLite and ONNX models are one",
                    builder.len()
                ),
            );
        };
        let tflite = model.get(4..8) == Some(b"TFL3");
        let expected = match encoding {
            GraphEncoding::Tensorflowlite => tflite,
            GraphEncoding::Onnx => !tflite,
            GraphEncoding::Autodetect => true,
            _ => {
                return self.error(
                    ErrorCode::InvalidEncoding,
                    format!("{encoding:?}: this host runs TensorFlow Lite and ONNX models"),
                );
            }
        };
        if !expected {
            return self.error(
                ErrorCode::InvalidEncoding,
                format!("the bytes are not a {encoding:?} model"),
            );
        }
        let loader = match self.nn.loader() {
            Ok(l) => l,
            Err(e) => return self.error(ErrorCode::UnsupportedOperation, e),
        };
        if self.nn.graphs >= MAX_GRAPHS {
            return self.error(
                ErrorCode::TooLarge,
                format!("{MAX_GRAPHS} graphs are loaded already; drop one first"),
            );
        }
        // The loader reads the model twice: once to describe its input and
        // output, once to record its plan; both inside its sandbox.
        let described = loader
            .instantiate(InitConfig {
                model: Some(model.clone()),
                settings: vec![("describe".into(), "true".into())],
            })
            .and_then(|mut i| i.process(&[]));
        let description = match described {
            Ok(inf) => serde_json::from_slice::<serde_json::Value>(&inf.output.unwrap_or_default())
                .unwrap_or_default(),
            Err(e) => return self.error(ErrorCode::InvalidEncoding, e.to_string()),
        };
        let (Some(input), Some(outputs)) =
            (port(&description, "input"), output_ports(&description))
        else {
            let why = description
                .get("load_error")
                .and_then(|e| e.as_str())
                .unwrap_or("the loader described no input and output")
                .to_string();
            return self.error(ErrorCode::InvalidEncoding, why);
        };
        let instance = match loader.instantiate(InitConfig {
            model: Some(model.clone()),
            settings: vec![],
        }) {
            Ok(i) => i,
            Err(e) => return self.error(ErrorCode::InvalidEncoding, e.to_string()),
        };
        self.nn.graphs += 1;
        let g = NnGraph(Arc::new(Mutex::new(Loaded {
            instance,
            input,
            outputs,
        })));
        Ok(Ok(self.table.push(g)?))
    }

    fn load_by_name(&mut self, name: String) -> Fallible<Resource<NnGraph>> {
        self.error(
            ErrorCode::NotFound,
            format!("no model is registered as {name:?}; load the bytes with `load`"),
        )
    }
}

impl winf::HostGraphExecutionContext for WasiNnView<'_> {
    fn compute(
        &mut self,
        ctx: Resource<NnContext>,
        inputs: Vec<(String, Resource<NnTensor>)>,
    ) -> Fallible<Vec<(String, Resource<NnTensor>)>> {
        let loaded = self.table.get(&ctx)?.0.clone();
        let Ok(mut loaded) = loaded.lock() else {
            return self.error(
                ErrorCode::RuntimeError,
                "an earlier computation failed midway",
            );
        };
        let want = loaded.input.clone();
        let [(name, tensor)] = inputs.as_slice() else {
            return self.error(
                ErrorCode::InvalidArgument,
                format!(
                    "{} inputs: the model has one, '{}'",
                    inputs.len(),
                    want.name
                ),
            );
        };
        if *name != want.name {
            return self.error(
                ErrorCode::InvalidArgument,
                format!("no input named '{name}': the model's is '{}'", want.name),
            );
        }
        let t = self.table.get(tensor)?;
        let bytes = want.byte_len();
        if t.ty != want.ty || t.dims != want.dims || t.data.len() != bytes {
            let why = format!(
                "input '{name}' is {:?} {:?} with {} bytes; the model takes {:?} {:?} ({bytes} bytes)",
                t.ty,
                t.dims,
                t.data.len(),
                want.ty,
                want.dims
            );
            return self.error(ErrorCode::InvalidArgument, why);
        }
        let data = t.data.clone();
        let out = match loaded.instance.process(&data) {
            Ok(inf) => inf.output.unwrap_or_default(),
            Err(e) => return self.error(ErrorCode::RuntimeError, e.to_string()),
        };
        let ports = loaded.outputs.clone();
        drop(loaded);
        let total: usize = ports.iter().map(Port::byte_len).sum();
        if out.len() != total {
            let why = format!(
                "the loader returned {} output bytes; the model's outputs take {total}",
                out.len()
            );
            return self.error(ErrorCode::RuntimeError, why);
        }
        let mut named = Vec::with_capacity(ports.len());
        let mut rest = out.as_slice();
        for port in ports {
            let (data, after) = rest.split_at(port.byte_len());
            rest = after;
            let t = self.table.push(NnTensor {
                dims: port.dims,
                ty: port.ty,
                data: data.to_vec(),
            })?;
            named.push((port.name, t));
        }
        Ok(Ok(named))
    }

    fn drop(&mut self, ctx: Resource<NnContext>) -> wasmtime::Result<()> {
        self.table.delete(ctx)?;
        Ok(())
    }
}

impl winf::Host for WasiNnView<'_> {}

#[cfg(test)]
mod tests {
    use super::*;
    use wgraph::Host as _;

    fn code(table: &ResourceTable, r: Fallible<impl Sized>) -> ErrorCode {
        match r.expect("no trap") {
            Err(e) => table.get(&e).expect("an error resource").code,
            Ok(_) => panic!("succeeded"),
        }
    }

    /// What a guest gets wrong, and what this host cannot do, are errors
    /// it can read (`error.code`, `error.data`), never traps.
    #[test]
    fn loads_the_host_cannot_serve_are_errors_the_guest_reads() {
        let (mut table, mut nn) = (ResourceTable::new(), WasiNn::new(None));
        let mut v = WasiNnView {
            table: &mut table,
            nn: &mut nn,
        };
        let tflite = b"\x1c\0\0\0TFL3rest".to_vec();
        let r = v.load(
            vec![tflite.clone()],
            GraphEncoding::Tensorflowlite,
            ExecutionTarget::Gpu,
        );
        assert!(matches!(code(v.table, r), ErrorCode::UnsupportedOperation));
        let r = v.load(
            vec![tflite.clone()],
            GraphEncoding::Openvino,
            ExecutionTarget::Cpu,
        );
        assert!(matches!(code(v.table, r), ErrorCode::InvalidEncoding));
        let r = v.load(
            vec![tflite.clone()],
            GraphEncoding::Onnx,
            ExecutionTarget::Cpu,
        );
        assert!(
            matches!(code(v.table, r), ErrorCode::InvalidEncoding),
            "TFLite bytes named ONNX"
        );
        let r = v.load(
            vec![tflite.clone(), vec![]],
            GraphEncoding::Autodetect,
            ExecutionTarget::Cpu,
        );
        assert!(matches!(code(v.table, r), ErrorCode::InvalidArgument));
        // Well-formed, but this store has no loader.
        let r = v.load(
            vec![tflite],
            GraphEncoding::Autodetect,
            ExecutionTarget::Cpu,
        );
        assert!(matches!(code(v.table, r), ErrorCode::UnsupportedOperation));
        let r = v.load_by_name("mobilenet".into());
        assert!(matches!(code(v.table, r), ErrorCode::NotFound));
    }

    #[test]
    fn ports_are_read_from_the_loaders_description() {
        let d: serde_json::Value = serde_json::from_str(r#"{"format":"onnx","input":{"name":"x \"1\"","shape":[1,3,16,16],"dtype":"float32","scale":0,"zero_point":0},"output":{"name":"y:0","shape":[1,4],"dtype":"int8","scale":0.5,"zero_point":3},"load_error":null}"#).expect("JSON");
        let i = port(&d, "input").expect("an input");
        assert_eq!(
            (i.name.as_str(), i.dims.as_slice()),
            ("x \"1\"", &[1, 3, 16, 16][..])
        );
        assert!(matches!(i.ty, TensorType::Fp32));
        let o = port(&d, "output").expect("an output");
        assert_eq!((o.name.as_str(), o.dims.as_slice()), ("y:0", &[1, 4][..]));
        assert!(matches!(o.ty, TensorType::U8));
        assert!(port(&serde_json::json!({"input": null}), "input").is_none());
        // Without `outputs`, the one `output`.
        let one = output_ports(&d).expect("the output");
        assert_eq!(one.len(), 1);
        assert_eq!(one[0].byte_len(), 4);
    }

    /// DynamicQuantizeLinear's three outputs, as the loader lists them.
    #[test]
    fn every_output_is_a_port() {
        let d = serde_json::json!({
            "input": {"name": "x", "shape": [2, 3], "dtype": "float32"},
            "output": {"name": "y", "shape": [2, 3], "dtype": "uint8"},
            "outputs": [
                {"name": "y", "shape": [2, 3], "dtype": "uint8"},
                {"name": "y_scale", "shape": [], "dtype": "float32"},
                {"name": "y_zero_point", "shape": [], "dtype": "uint8"},
                {"name": "sums", "shape": [2], "dtype": "int32"},
            ],
        });
        let ports = output_ports(&d).expect("four outputs");
        let sizes: Vec<_> = ports
            .iter()
            .map(|p| (p.name.as_str(), p.byte_len()))
            .collect();
        assert_eq!(
            sizes,
            [("y", 6), ("y_scale", 4), ("y_zero_point", 1), ("sums", 8)]
        );
        assert!(matches!(ports[3].ty, TensorType::I32));
        // One that cannot be read fails the whole list.
        let bad = serde_json::json!({"outputs": [{"name": "y", "shape": [1], "dtype": "float64"}]});
        assert!(output_ports(&bad).is_none());
    }
}
