#!/bin/bash
cd /work/main
out=work_dirs/bench_1202
B=".venv/bin/python projects/lab/tools/benchmark.py"
date -u +%FT%T > $out/start
$B configs/maple/maple_vitb16_b2n_eurosat.py --reference --steps 3 --out $out/maple.json > $out/maple.log 2>&1
$B configs/dgprompt/dgprompt_vitb16_b2n_eurosat.py --reference --steps 3 --out $out/dgprompt.json > $out/dgprompt.log 2>&1
$B configs/tomm/ctp_tft_vitb16_b2n_eurosat.py --reference --steps 3 --out $out/ctp_tft.json > $out/ctp_tft.log 2>&1
$B configs/mpl/ftp_tvp_vitb16_b2n_eurosat.py --reference --steps 3 --out $out/ftp_tvp.json > $out/ftp_tvp.log 2>&1
$B configs/coop/coop_vitb16_b2n_eurosat.py --steps 3 --out $out/coop.json > $out/coop.log 2>&1
$B configs/cocoop/cocoop_vitb16_b2n_eurosat.py --steps 3 --out $out/cocoop.json > $out/cocoop.log 2>&1
$B configs/coop/kgcoop_vitb16_b2n_eurosat.py --steps 3 --out $out/kgcoop.json > $out/kgcoop.log 2>&1
$B configs/mpl/ftp_vitb16_b2n_eurosat.py --steps 3 --out $out/ftp.json > $out/ftp.log 2>&1
$B configs/dgprompt/promptsrc_vitb16_b2n_eurosat.py --steps 3 --out $out/promptsrc.json > $out/promptsrc.log 2>&1
date -u +%FT%T > $out/end
