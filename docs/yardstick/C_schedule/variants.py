"""Issue 31's exploration on set C: the schedule-matched variants of CoCoOp,
CTP, FTP and CTP+TFT (the configs as they were before the schedule change of
commit 459755c: TOMM and MPL at lr 2e-3, batch 4). Run from the repository
root, as the yardstick tool with these variants added:

    python docs/yardstick/C_schedule/variants.py --work-dir WORK \
        --seeds $(seq 17 24) --methods CoCoOp 'CoCoOp (batch 4)' ...

(``git checkout 8911285 -- configs/tomm configs/mpl`` gives those configs.)
"""
import os.path as osp
import sys

HERE = osp.dirname(osp.abspath(__file__))
sys.path.insert(0, osp.dirname(osp.dirname(osp.dirname(HERE))))
from mmpl_lab import yardstick as ys  # noqa: E402

M = ys.Method
TOMM = 'configs/tomm/ctp_tft_vitb16_b2n_eurosat.py'
MPL = 'configs/mpl/ftp_tvp_vitb16_b2n_eurosat.py'
CTP = {'model.feature_tuner': None, 'model.extra_losses': []}
FTP = {'model.visual_prompt': None}
BATCH_1 = {'train_dataloader.batch_size': 1}
LR_X4 = {'optim_wrapper.optimizer.lr': 8e-3}
ys.METHODS['CoCoOp (batch 4)'] = M(
    'configs/cocoop/cocoop_vitb16_b2n_eurosat.py',
    {'train_dataloader.batch_size': 4})
ys.METHODS['CTP (batch 1)'] = M(TOMM, dict(CTP, **BATCH_1))
ys.METHODS['FTP (batch 1)'] = M(MPL, dict(FTP, **BATCH_1))
ys.METHODS['CTP (lr x4)'] = M(TOMM, dict(CTP, **LR_X4))
ys.METHODS['FTP (lr x4)'] = M(MPL, dict(FTP, **LR_X4))
ys.METHODS['CTP+TFT (lr x4)'] = M(TOMM, LR_X4)
ys.METHODS['CTP+TFT (batch 1)'] = M(TOMM, BATCH_1)
ys.ABLATIONS.clear()
ys.ABLATIONS.update({
 'CTP@4 vs CoCoOp@4': ('CTP', 'CoCoOp (batch 4)'),
 'CTP@1 vs CoCoOp@1': ('CTP (batch 1)', 'CoCoOp'),
 'FTP@4 vs CoCoOp@4': ('FTP', 'CoCoOp (batch 4)'),
 'FTP@1 vs CoCoOp@1': ('FTP (batch 1)', 'CoCoOp'),
 'CoCoOp@4 vs CoCoOp@1': ('CoCoOp (batch 4)', 'CoCoOp'),
})
if __name__ == '__main__':
    sys.path.insert(0, osp.join(osp.dirname(osp.dirname(osp.dirname(
        HERE))), 'tools', 'analysis_tools'))
    import yardstick as tool
    sys.exit(tool.main(sys.argv[1:]))
