# Runs a libFuzzer binary for SECONDS on a fresh copy of the seed corpus in WORK.
#   cmake -DFUZZER=bin -DCORPUS=dir -DWORK=dir -DSECONDS=20 [-DDICT=file.dict] -P run_fuzz.cmake
foreach(v FUZZER CORPUS WORK SECONDS)
  if(NOT DEFINED ${v})
    message(FATAL_ERROR "run_fuzz.cmake: -D${v}=... is required")
  endif()
endforeach()
if(NOT EXISTS ${FUZZER})
  message(FATAL_ERROR "fuzzer binary ${FUZZER} is missing; build its target")
endif()

file(REMOVE_RECURSE ${WORK})
file(MAKE_DIRECTORY ${WORK}/corpus ${WORK}/artifacts)
file(GLOB seeds ${CORPUS}/*)
file(COPY ${seeds} DESTINATION ${WORK}/corpus)
list(LENGTH seeds n)
message(STATUS "fuzzing for ${SECONDS}s from ${n} seeds in ${WORK}")

set(dict_flag)
if(DICT)
  set(dict_flag -dict=${DICT})
endif()
execute_process(
  COMMAND ${FUZZER} ${WORK}/corpus ${dict_flag} -max_total_time=${SECONDS} -rss_limit_mb=2048 -timeout=10
          -print_final_stats=1 -artifact_prefix=${WORK}/artifacts/
  RESULT_VARIABLE rc
  OUTPUT_VARIABLE out
  ERROR_VARIABLE out)
string(LENGTH "${out}" len)
if(len GREATER 6000)
  math(EXPR from "${len} - 6000")
  string(SUBSTRING "${out}" ${from} 6000 out)
endif()
message("${out}")
if(NOT rc EQUAL 0)
  file(GLOB artifacts ${WORK}/artifacts/*)
  message(FATAL_ERROR "libFuzzer exited with ${rc}; reproducers: ${artifacts}")
endif()
file(GLOB artifacts ${WORK}/artifacts/*)
if(artifacts)
  message(FATAL_ERROR "libFuzzer left artifacts: ${artifacts}")
endif()
file(REMOVE_RECURSE ${WORK})
