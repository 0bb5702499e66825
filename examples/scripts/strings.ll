; String building: "item-" ++ 1 ++ "-" ++ 2.5, interned by the runtime's one global intern table.
declare ptr @CreateWrappedValueFromString(ptr)
declare ptr @CreateWrappedValueFromInt(i32)
declare ptr @CreateWrappedValueFromDouble(double)
declare ptr @WrappedValueConcat(ptr, ptr)

@item = private unnamed_addr constant [6 x i8] c"item-\00"
@dash = private unnamed_addr constant [2 x i8] c"-\00"

define ptr @label_WRAPPED(ptr %0, ptr %1) {
  %a = call ptr @CreateWrappedValueFromString(ptr @item)
  %n = call ptr @CreateWrappedValueFromInt(i32 1)
  %b = call ptr @WrappedValueConcat(ptr %a, ptr %n)
  %d = call ptr @CreateWrappedValueFromString(ptr @dash)
  %c = call ptr @WrappedValueConcat(ptr %b, ptr %d)
  %x = call ptr @CreateWrappedValueFromDouble(double 2.5)
  %r = call ptr @WrappedValueConcat(ptr %c, ptr %x)
  ret ptr %r
}
