# Smoke test for muxmicro, run by ctest as `cmake -DMUXMICRO=... -DOUT=... -P check_smoke.cmake`.
# Runs every registered benchmark with a tiny minimum time and fails unless each one listed
# by --benchmark_list_tests appears in the JSON either measured (iterations > 0, and a
# ns_per_round counter for the families that report one) or skipped for a documented limit
# (FD_SETSIZE, fd limit, io_uring unavailable). Any other error, for instance a wait that
# found the wrong number of ready fds, fails the test. It asserts no timing.
cmake_minimum_required(VERSION 3.25)

execute_process(COMMAND ${MUXMICRO} --benchmark_list_tests
                OUTPUT_VARIABLE listed RESULT_VARIABLE rc)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "muxmicro --benchmark_list_tests exited with ${rc}")
endif()
string(REGEX REPLACE "\n$" "" listed "${listed}")
string(REPLACE "\n" ";" listed "${listed}")

execute_process(COMMAND ${MUXMICRO} --benchmark_min_time=0.001 --benchmark_out=${OUT}
                        --benchmark_out_format=json
                OUTPUT_QUIET RESULT_VARIABLE rc)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "muxmicro exited with ${rc}")
endif()

file(READ ${OUT} json)
string(JSON count LENGTH "${json}" benchmarks)
set(seen "")
set(failures "")
set(skipped 0)
math(EXPR last "${count} - 1")
foreach(i RANGE ${last})
  string(JSON name GET "${json}" benchmarks ${i} name)
  list(APPEND seen "${name}")
  string(JSON error ERROR_VARIABLE no_error GET "${json}" benchmarks ${i} error_message)
  if(NOT no_error)
    if(error MATCHES "FD_SETSIZE|fd limit|io_uring unavailable")
      math(EXPR skipped "${skipped} + 1")
    else()
      list(APPEND failures "${name}: ${error}")
    endif()
    continue()
  endif()
  string(JSON iterations GET "${json}" benchmarks ${i} iterations)
  if(iterations LESS 1)
    list(APPEND failures "${name}: ran 0 iterations")
  endif()
  if(name MATCHES "^BM_(Dispatch|PollArrayRebuild|FdSetRebuild)")
    string(JSON per_round ERROR_VARIABLE missing GET "${json}" benchmarks ${i} ns_per_round)
    if(missing OR NOT per_round GREATER 0)
      list(APPEND failures "${name}: no positive ns_per_round counter")
    endif()
  endif()
endforeach()

foreach(name IN LISTS listed)
  if(NOT name IN_LIST seen)
    list(APPEND failures "${name}: listed but missing from the JSON")
  endif()
endforeach()

list(LENGTH listed listed_count)
if(failures)
  list(JOIN failures "\n  " text)
  message(FATAL_ERROR "micro smoke: ${listed_count} listed, ${count} in JSON, failures:\n  ${text}")
endif()
message(STATUS "micro smoke: ${count} of ${listed_count} benchmarks ran or were skipped (${skipped} skipped at a limit)")
