"""``aod-producer``: reconstruction results -> AO2D tables with O2 column names (AOD/*).

Layer: stages, as O2's AOD producer workflow: it joins the track parameters, covariance, dE/dx,
TOF and TRD matching, n-sigma PID and MC labels row by row into the tables of
``docs/aod_schema.md``, which the ``aod-writer`` writes to ``DF_<n>`` folders. MC labels are
optional (data without MC gives -1). The track network's output (``TPC/TRACKNET``) is optional
too: when present, tracks it rejects get the ``0x4`` bit (REJECTED) in ``fFlags`` (they are
kept, never deleted) and its columns go to the ``O2tracknet`` table (``AOD/TRACKNET``); with
``embedding=True`` its track embedding goes to ``O2tracknetemb`` (``AOD/TRACKNETEMB``, columns
``fEmb00``, ``fEmb01``, ...), for training networks that reuse it.
"""

from __future__ import annotations

import numpy as np

from alice_dyn.event.tracks import REJECTED, TPCTracks
from alice_dyn.framework.context import ProcessingContext
from alice_dyn.framework.spec import DataProcessorSpec, Lifetime
from alice_dyn.stages import data_types as dt

NAME = "aod-producer"
COV_NAMES = (
    "fCYY", "fCZY", "fCZZ", "fCSnpY", "fCSnpZ", "fCSnpSnp", "fCTglY", "fCTglZ", "fCTglSnp",
    "fCTglTgl", "fC1PtY", "fC1PtZ", "fC1PtSnp", "fC1PtTgl", "fC1Pt21Pt2",
)  # fmt: skip
SPECIES_SUFFIX = ("El", "Mu", "Pi", "Ka", "Pr")
#: O2tracknet column -> TPC/TRACKNET column (the embedding stays in the workflow)
TRACKNET_COLUMNS = {
    "fTrackNetGood": "prob_good", "fTrackNetFake": "prob_fake", "fTrackNetClone": "prob_clone",
    "fTrackNetClass": "decision", "fTrackNetRejected": "rejected", "fTrackNetExit": "exit",
    "fTrackNetFlops": "flops", "fTrackNetSigned1Pt": "q2pt", "fTrackNetTgl": "tgl",
    "fTrackNetSnp": "snp", "fTrackNetY": "y", "fTrackNetZ": "z",
    "fTrackNetSigma1Pt": "sigma_q2pt", "fTrackNetSigmaTgl": "sigma_tgl",
    "fTrackNetSigmaSnp": "sigma_snp", "fTrackNetSigmaY": "sigma_y", "fTrackNetSigmaZ": "sigma_z",
}  # fmt: skip


def run(pc: ProcessingContext) -> None:
    tr = TPCTracks(**pc.inputs.get("tracks"))
    n = len(tr)
    f32 = np.float32
    dedx = pc.inputs.get("dedx")
    tof = pc.inputs.get("tofmatch")
    trd = pc.inputs.get("trdmatch")
    pid = pc.inputs.get("pid")
    flags = tr.flags
    if pc.inputs.is_valid("tracknet"):
        net = pc.inputs.get("tracknet")
        flags = np.where(net["rejected"] != 0, flags | REJECTED, flags).astype(np.uint8)
        pc.outputs.adopt(
            dt.AOD_TRACKNET,
            {aod: np.ascontiguousarray(net[col]) for aod, col in TRACKNET_COLUMNS.items()},
        )
        if pc.outputs.declares(dt.AOD_TRACKNET_EMB):
            emb = np.asarray(net["embedding"], np.float32).reshape(n, -1)
            pc.outputs.adopt(
                dt.AOD_TRACKNET_EMB,
                {f"fEmb{i:02d}": np.ascontiguousarray(emb[:, i]) for i in range(emb.shape[1])},
            )
    pc.outputs.adopt(
        dt.AOD_TABLES["track_iu"],
        {
            "fX": tr.x_cm, "fAlpha": tr.alpha_rad, "fY": tr.y_cm, "fZ": tr.z_cm, "fSnp": tr.snp,
            "fTgl": tr.tgl, "fSigned1Pt": tr.q2pt, "fTime0": tr.time0_bins, "fFlags": flags,
        },
    )  # fmt: skip
    pc.outputs.adopt(
        dt.AOD_TABLES["trackcov_iu"],
        {name: np.ascontiguousarray(tr.cov[:, k]) for k, name in enumerate(COV_NAMES)},
    )
    has_tof = tof["hit"] >= 0
    pc.outputs.adopt(
        dt.AOD_TABLES["trackextra"],
        {
            "fTPCInnerParam": tr.p_gev().astype(f32),
            "fTPCSignal": dedx["signal_tot"].astype(f32),
            "fTPCSignalQmax": dedx["signal_max"].astype(f32),
            "fTPCNClsFound": tr.n_clusters.astype(np.int16),
            "fTPCChi2NCl": (tr.chi2 / np.maximum(tr.n_clusters, 1)).astype(f32),
            "fTRDSignal": trd["signal"].astype(f32),
            "fTRDPattern": trd["pattern"].astype(np.uint8),
            "fTOFSignal": tof["signal_ps"].astype(f32),
            "fTOFChi2": tof["chi2"].astype(f32),
            "fLength": tof["length_cm"].astype(f32),
            "fBeta": tof["beta"].astype(f32),
            "fHasTOF": has_tof.astype(np.uint8),
            "fHasTRD": (trd["n_tracklets"] > 0).astype(np.uint8),
        },
    )
    if pc.inputs.is_valid("labels"):
        lab = pc.inputs.get("labels")
        mc = {"fMcParticleId": lab["mc_id"], "fMcMask": lab["mask"], "fMcPurity": lab["purity"]}
    else:
        mc = {
            "fMcParticleId": np.full(n, -1, np.int32),
            "fMcMask": np.full(n, 0x8000, np.uint16),
            "fMcPurity": np.zeros(n, f32),
        }
    pc.outputs.adopt(dt.AOD_TABLES["mctracklabel"], mc)
    pc.outputs.adopt(
        dt.AOD_TABLES["pidtpc"],
        {f"fTPCNSigma{s}": pid["tpc"][:, k].astype(f32) for k, s in enumerate(SPECIES_SUFFIX)},
    )
    pc.outputs.adopt(
        dt.AOD_TABLES["pidtof"],
        {f"fTOFNSigma{s}": pid["tof"][:, k].astype(f32) for k, s in enumerate(SPECIES_SUFFIX)},
    )
    pc.outputs.adopt(dt.AOD_TABLES["pid"], {"fPidNSigma": pid["decision"].astype(np.int8)})


def aod_producer_spec(tracknet: bool = False, embedding: bool = False) -> DataProcessorSpec:
    """The producer; ``tracknet``: also read ``TPC/TRACKNET`` (the workflow must run the
    ``track-net`` stage) and make ``AOD/TRACKNET``; ``embedding``: also ``AOD/TRACKNETEMB``."""
    inputs = [
        dt.input_spec("tracks", dt.TRACKS),
        dt.input_spec("dedx", dt.DEDX),
        dt.input_spec("tofmatch", dt.TOF_MATCH),
        dt.input_spec("trdmatch", dt.TRD_MATCH),
        dt.input_spec("pid", dt.PID_NSIGMA),
        dt.input_spec("labels", dt.TRACKS_MC, Lifetime.Optional),
    ]
    outputs = list(dt.AOD_TABLES.values())
    if tracknet:
        inputs.append(dt.input_spec("tracknet", dt.TRACKNET, Lifetime.Optional))
        outputs.append(dt.AOD_TRACKNET)
        if embedding:
            outputs.append(dt.AOD_TRACKNET_EMB)
    return DataProcessorSpec(
        name=NAME,
        inputs=inputs,
        outputs=[dt.output_spec(d) for d in outputs],
        algorithm=run,
        factory=f"{__name__}:aod_producer_spec",
        factory_kwargs={"tracknet": tracknet, "embedding": embedding},
    )
